import pytest

from jobsync_pipeline.core.categories import CATEGORIES, categorize

# Titles as real boards write them (Greenhouse, Lever, RemoteOK, Himalayas), with the category a
# person sorting them would give.
TITLES = {
    "engineering": [
        "Senior Software Engineer", "Software Engineer II, Backend", "Staff Software Engineer - Growth",
        "Frontend Engineer (React)", "Sr. Front-End Developer", "Full Stack Developer", "Full-Stack Engineer, Payments",
        "Backend Engineer - Go", "iOS Engineer", "Android Developer", "Mobile Engineer (React Native)",
        "Site Reliability Engineer", "DevOps Engineer", "Platform Engineer, Kubernetes", "Infrastructure Engineer",
        "Security Engineer", "Application Security Analyst", "Engineering Manager, Core Platform",
        "Director of Engineering", "VP of Engineering", "CTO", "Principal Architect", "Solutions Architect",
        "QA Engineer", "QA Analyst", "SDET", "Test Automation Engineer", "Embedded Firmware Engineer",
        "Cloud Engineer (AWS)", "Senior Python Developer", "Ruby on Rails Developer", "Golang Engineer",
        "Web Developer", "Blockchain Developer", "Smart Contract Engineer (Solidity)", "Tech Lead, Search",
        "Technical Writer", "Product Engineer", "Growth Engineer", "Systems Administrator", "Network Engineer",
        "Design Engineer", "Data Center Technician", "Senior Software Engineer, Data Platform",
    ],
    "data": [
        "Data Engineer", "Senior Data Scientist", "Machine Learning Engineer", "ML Ops Engineer",
        "Data Analyst", "Analytics Engineer", "Business Intelligence Analyst", "BI Developer",
        "Research Scientist, NLP", "AI Engineer", "Staff Data Engineer - Pipelines", "Head of Data",
        "Quantitative Researcher", "Computer Vision Engineer", "LLM Engineer", "Business Analyst",
    ],
    "design": [
        "Product Designer", "Senior UX Designer", "UI/UX Designer", "UX Researcher", "Brand Designer",
        "Visual Designer", "Graphic Designer", "Motion Designer", "Design Lead", "Head of Design",
        "Content Designer", "Illustrator", "Art Director",
    ],
    "product": [
        "Product Manager", "Senior Product Manager, Payments", "Technical Product Manager", "Product Owner",
        "Head of Product", "Director of Product", "VP Product", "Group Product Manager", "Product Lead",
        "Chief Product Officer", "Product Operations Manager",
    ],
    "marketing": [
        "Product Marketing Manager", "Growth Marketing Manager", "Content Marketing Manager", "SEO Specialist",
        "Head of Marketing", "Brand Manager", "Social Media Manager", "Copywriter", "Content Writer",
        "Community Manager", "Demand Generation Manager", "Communications Manager", "PR Manager",
        "Lifecycle Marketing Lead", "Marketing Analyst", "Events Manager",
    ],
    "sales": [
        "Account Executive", "Senior Account Executive, Enterprise", "Sales Development Representative",
        "Business Development Representative", "SDR", "Sales Engineer", "Solutions Engineer", "Account Manager",
        "Head of Sales", "VP of Sales", "Partnerships Manager", "Channel Sales Manager", "Key Account Manager",
        "Inside Sales Representative", "Pre-Sales Consultant",
    ],
    "customer support": [
        "Customer Support Specialist", "Customer Success Manager", "Technical Support Engineer",
        "Support Engineer", "Customer Service Representative", "Help Desk Technician", "IT Support Specialist",
        "Manager, Customer Success", "Customer Experience Associate", "Implementation Specialist",
        "Technical Account Manager", "Onboarding Specialist", "Product Support Specialist",
    ],
    "operations": [
        "Office Manager", "Operations Manager", "Business Operations Lead", "Revenue Operations Manager",
        "Sales Operations Analyst", "Executive Assistant", "Chief of Staff", "Project Manager",
        "Technical Program Manager", "Logistics Coordinator", "Supply Chain Analyst", "Procurement Specialist",
        "Facilities Manager", "Warehouse Associate", "Compliance Officer", "Strategy & Operations Associate",
    ],
    "finance": [
        "Financial Analyst", "Senior Accountant", "Staff Accountant", "Controller", "FP&A Manager",
        "Payroll Specialist", "Tax Manager", "Head of Finance", "Accounts Payable Clerk", "Billing Specialist",
        "Treasury Analyst", "Revenue Accountant", "Chief Financial Officer",
    ],
    "people": [
        "Technical Recruiter", "Senior Recruiter, Engineering", "Talent Acquisition Partner", "HR Business Partner",
        "People Partner", "Head of People", "Human Resources Generalist", "People Operations Manager",
        "Compensation & Benefits Analyst", "Sourcer", "Learning & Development Manager", "People Analytics Lead",
    ],
    "other": [
        "Legal Counsel", "Paralegal", "Attorney", "Nurse Practitioner", "Teacher", "Driver", "Chef", "Translator",
    ],
}
CASES = [(title, category) for category, titles in TITLES.items() for title in titles]


def test_the_corpus_is_large_and_covers_every_category():
    assert len(CASES) >= 100
    assert set(TITLES) == set(CATEGORIES)


@pytest.mark.parametrize(("title", "category"), CASES)
def test_real_titles(title, category):
    assert categorize(title) == category


def test_the_role_part_of_a_title_decides_before_its_qualifiers():
    assert categorize("Senior Software Engineer - Growth Marketing") == "engineering"
    assert categorize("Manager, Sales Operations") == "operations"
    assert categorize("Engineer (Data)") == "engineering"
    assert categorize("Lead, Data") == "data"  # nothing in the role part: the qualifier says


def test_department_then_tags_when_the_title_says_nothing():
    assert categorize("Associate", department="Data Platform") == "data"
    assert categorize("Associate", department="Finance") == "finance"
    assert categorize("Ninja", tags=["dev", "engineer", "backend", "golang"]) == "engineering"
    assert categorize("Rockstar", tags=["design", "marketing", "marketing"]) == "marketing"  # the most tags
    assert categorize("Rockstar", tags=["design", "marketing"]) == "design"  # a tie: the first in CATEGORIES
    assert categorize("Data Engineer", tags=["marketing"], department="Sales") == "data"  # the title first


def test_nothing_to_go_on_is_other_never_an_error():
    for title in (None, "", "???", "   ", "Rockstar"):
        assert categorize(title) == "other"
    assert categorize("Rockstar", tags=["", "non tech"], department="") == "other"
    assert categorize("Ingénieur logiciel") == "other"  # a rule set in English says nothing of other tongues


def test_case_punctuation_and_unicode_do_not_matter():
    assert categorize("SENIOR BACK-END ENGINEER") == categorize("senior backend engineer") == "engineering"
    assert categorize("Ｄａｔａ Ｅｎｇｉｎｅｅｒ") == "data"  # full-width letters
