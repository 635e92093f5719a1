"""The category of a job (engineering, data, design, …) from its title, department and tags, by rules.

A title names the role first and qualifies it after ("Senior Software Engineer - Growth", "Manager,
Customer Success"), so the rules read the role part of the title first, then its qualifiers, then the
department, then the source's tags; the first that says something decides. Within a text the rules
are tried in order, most specific first: "Product Designer" is design, "Product Marketing Manager"
marketing, "Data Engineer" data, "Sales Engineer" sales, and only then is an engineer engineering.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from jobsync_pipeline.core.normalize import match_text

ENGINEERING, DATA, DESIGN, PRODUCT = "engineering", "data", "design", "product"
MARKETING, SALES, SUPPORT, OPERATIONS = "marketing", "sales", "customer support", "operations"
FINANCE, PEOPLE, OTHER = "finance", "people", "other"
CATEGORIES = (ENGINEERING, DATA, DESIGN, PRODUCT, MARKETING, SALES, SUPPORT, OPERATIONS, FINANCE, PEOPLE, OTHER)


def _words(*patterns: str) -> re.Pattern:
    # over match_text: lower case, punctuation as spaces ("front-end" is "front end", "C++" is "c")
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


# Phrases whose words would otherwise fall to a broader rule: checked before every rule below.
_PHRASES: tuple[tuple[str, re.Pattern], ...] = (
    # work none of the categories is: the law, care, teaching, and training AI models on a subject
    (OTHER, _words(r"legal counsel", r"counsel", r"attorney", r"lawyer", r"paralegal", r"law", r"solicitor",
                   r"nurse", r"nursing", r"physician", r"doctor", r"pharmacy", r"pharmacist", r"patient care",
                   r"therapist", r"caregiver", r"tutor", r"teacher", r"teaching", r"professor", r"ai trainer",
                   r"ai training", r"evaluator", r"assessor", r"voice actor", r"actor", r"driver", r"chef",
                   r"translator", r"interpreter", r"general application", r"spontaneous application",
                   r"open application")),
    (DATA, _words(r"business intelligence", r"data analyst", r"data scientist")),
    (OPERATIONS, _words(r"(?:risk|fraud|compliance|case|kyc|aml|sanctions|trust and safety|policy) (?:\w+ )?analyst",
                        r"financial crimes?", r"sanctions", r"anti money laundering", r"kyc", r"aml",
                        r"directeur de projets?", r"chef de projets?", r"bras droit")),
    (ENGINEERING, _words(r"security (?:analyst|engineer|architect)", r"technical writer", r"design engineer",
                         r"ui engineer", r"ui developer", r"data center technician", r"qa analyst",
                         r"test analyst", r"systems analyst", r"product engineer", r"growth engineer",
                         r"design verification")),
    (SUPPORT, _words(r"technical support", r"support engineer", r"customer success", r"customer support",
                     r"customer service", r"customer experience", r"customer care", r"it support",
                     r"product support", r"technical account manager", r"client success", r"retention")),
    (SALES, _words(r"sales engineer", r"solutions? engineer", r"solutions? consultant", r"pre sales",
                   r"sales development", r"account executive", r"business development", r"business developer",
                   r"chief revenue officer", r"appointment setter", r"client partner", r"accounts? manager",
                   r"strategic accounts?", r"alliances?")),
    (FINANCE, _words(r"revenue account(?:ant|ing)", r"revenue analyst")),
    (OPERATIONS, _words(r"revenue operations", r"business operations", r"sales operations", r"marketing operations",
                        r"bizops", r"revops", r"supply chain")),
    (FINANCE, _words(r"financial analyst", r"finance analyst", r"fp a", r"credit analyst", r"investment analyst")),
    (PEOPLE, _words(r"people operations", r"people partner", r"people analytics", r"talent acquisition")),
)
_RULES: tuple[tuple[str, re.Pattern], ...] = (
    (DESIGN, _words(r"designer", r"design", r"ux", r"ui", r"user experience", r"user research(?:er)?",
                    r"ux researcher", r"illustrator", r"art director", r"creative director", r"animator",
                    r"motion", r"visual", r"graphic", r"artist")),
    (MARKETING, _words(r"marketing", r"marketer", r"seo", r"sem", r"copywriter", r"copy writer", r"brand", r"communications",
                       r"public relations", r"pr", r"social media", r"demand generation", r"demand gen",
                       r"influencer", r"media buyer", r"editor", r"writer", r"journalist",
                       r"content (?:writer|strategist|strategy|manager|creator|editor|specialist|lead|producer)",
                       r"community (?:manager|lead|specialist)", r"growth (?:manager|lead|hacker|marketer)",
                       r"lifecycle", r"crm (?:manager|specialist)", r"conversion rate", r"cro",
                       r"events? (?:manager|coordinator|lead|specialist)", r"campaigns?", r"paid (?:ads|media|social)",
                       r"advertising", r"ads", r"account supervisor")),
    (PRODUCT, _words(r"product (?:manager|management|owner|lead|director|head|operations|ops|analyst|"
                     r"strategist|specialist|leader)", r"head of product", r"director of product",
                     r"vice president of product", r"vice president product", r"vp (?:of )?product",
                     r"chief product", r"cpo")),
    (SALES, _words(r"sales", r"seller", r"account manager", r"account director", r"key account", r"bdr", r"sdr",
                   r"partnerships?", r"channel", r"closer", r"inside sales", r"territory")),
    (SUPPORT, _words(r"support", r"help ?desk", r"service desk", r"customer", r"onboarding", r"implementation",
                     r"client services")),
    (FINANCE, _words(r"finance", r"financial", r"accountant", r"accounting", r"controller", r"comptroller",
                     r"payroll", r"tax", r"treasury", r"treasurer", r"bookkeeper", r"bookkeeping", r"audit(?:or)?",
                     r"billing", r"accounts payable", r"accounts receivable", r"cfo", r"investor relations",
                     r"actuary", r"actuarial", r"fp a", r"collections", r"trader", r"trading", r"underwriter")),
    (PEOPLE, _words(r"recruiter", r"recruiting", r"recruitment", r"talent", r"sourcer", r"human resources", r"hr",
                    r"hrbp", r"people", r"compensation", r"benefits", r"total rewards", r"learning (?:and )?development",
                    r"l d", r"culture", r"diversity")),
    (DATA, _words(r"data", r"analyst", r"analytics", r"scientist", r"science", r"machine learning", r"ml", r"mlops",
                  r"ai", r"artificial intelligence", r"deep learning", r"nlp", r"computer vision", r"llm",
                  r"business intelligence", r"bi", r"statistician", r"statistics", r"quantitative", r"quant",
                  r"etl", r"dbt")),
    (ENGINEERING, _words(r"engineer", r"engineering", r"developer", r"development", r"programmer", r"devops",
                         r"sre", r"site reliability", r"software", r"architect", r"qa", r"quality assurance",
                         r"sdet", r"tester", r"test automation", r"front ?end", r"back ?end", r"full ?stack",
                         r"ios", r"android", r"mobile", r"web", r"infrastructure", r"platform", r"cloud",
                         r"security", r"firmware", r"embedded", r"cto", r"tech lead", r"technical lead",
                         r"kubernetes", r"golang", r"python", r"java", r"javascript", r"typescript", r"react",
                         r"node", r"rust", r"ruby", r"rails", r"php", r"sysadmin",
                         r"system administrator", r"systems administrator", r"network", r"blockchain",
                         r"smart contract", r"solidity", r"dev", r"coder", r"it", r"technician", r"hardware",
                         r"technology", r"threat", r"cyber ?security", r"penetration")),
    (OPERATIONS, _words(r"operations", r"ops", r"office", r"logistics", r"supply chain", r"purchasing", r"procurement", r"buyer",
                        r"administrative", r"administrator", r"admin", r"assistant", r"executive assistant",
                        r"chief of staff", r"project manager", r"program manager", r"programme manager",
                        r"project management", r"coordinator", r"facilities", r"workplace", r"warehouse",
                        r"fulfillment", r"fulfilment", r"dispatcher", r"scheduler", r"inventory", r"receptionist",
                        r"coo", r"general manager", r"strategy", r"compliance", r"risk", r"claims", r"process",
                        r"customs", r"import", r"export")),
)
# Where a title qualifies its role: "Engineer, Payments", "Manager - Customer Success", "Engineer (Data)".
_QUALIFIER = re.compile(r"\s*(?:,|\(|\)|\||:|\s[-–—/]\s|\s@\s|\bat\b)\s*")
# Pay written into a title ("Upto $135/hr"): a pay unit is not a department ("hr").
_PAY = re.compile(r"(?:up ?to\s*)?(?:[$€£]\s?\d[\d,.]*\s*[kK]?|\d[\d,.]*\s*[kK]?\s?(?:usd|eur|gbp))"
                  r"(?:\s*(?:/|per|an|a)\s*(?:hr|hour|h|yr|year|month|mo|day|wk|week))?", re.IGNORECASE)
# The nouns that name a role. A title names its role with one ("Data Scientist", "Tech Lead") and may
# go on after it ("Tech Lead AI Coding", "Software Engineer Fullstack AI"): what follows qualifies it.
_HEADS = _words(r"engineers?", r"developers?", r"programmer", r"architect", r"scientist", r"researcher", r"analyst",
                r"designer", r"manager", r"lead", r"director", r"head", r"officer", r"president", r"vp", r"chief",
                r"specialist", r"associate", r"representative", r"rep", r"consultant", r"coordinator",
                r"administrator", r"assistant", r"executive", r"recruiter", r"sourcer", r"accountant", r"controller",
                r"writer", r"editor", r"artist", r"technician", r"attorney", r"lawyer", r"counsel", r"paralegal",
                r"tutor", r"teacher", r"trainer", r"nurse", r"physician", r"pharmacist", r"therapist", r"advisor",
                r"adviser", r"strategist", r"partner", r"expert", r"agent", r"owner", r"intern", r"generalist",
                r"clerk", r"supervisor", r"operator", r"evaluator", r"actor", r"illustrator", r"animator",
                r"copywriter", r"marketer", r"buyer", r"planner", r"bookkeeper", r"auditor", r"actuary",
                r"handler", r"setter", r"sdr", r"bdr", r"cto", r"cfo", r"coo", r"ceo", r"cmo", r"cpo", r"sre",
                r"sdet", r"devops", r"qa", r"tester", r"ingenieur", r"developpeur", r"directeur", r"chef",
                r"driver", r"translator", r"interpreter", r"staff", r"principal", r"trader", r"broker",
                r"underwriter", r"investigator", r"inspector", r"scout", r"coach", r"mentor", r"moderator",
                r"reviewer", r"annotator", r"photographer", r"videographer", r"producer", r"journalist",
                r"cashier", r"cook", r"cleaner", r"electrician", r"mechanic", r"technologist", r"worker")
# Role nouns that say nothing of the work on their own ("Manager, Finance"; but "Engineer (Data)" is an engineer).
_GENERIC_HEADS = {"analyst", "manager", "lead", "director", "head", "specialist", "associate", "consultant",
                  "coordinator", "officer", "executive", "partner", "advisor", "adviser", "strategist", "expert",
                  "supervisor", "vp", "president", "principal", "staff", "intern", "generalist"}
# "Assistant Manager, Sales Development" is a manager of sales, not an assistant.
_ASSISTANT_TO = re.compile(r"\b(?:assistant|associate|deputy) (?=manager|director|vice president|vp|head)\b")
# Heads that name the work whatever comes before them ("Customer Data Scientist" is data).
_DECISIVE_HEADS: tuple[tuple[str, re.Pattern], ...] = (
    (DATA, _words(r"scientist")),
    (DESIGN, _words(r"designer", r"artist", r"illustrator", r"animator")),
    (PEOPLE, _words(r"recruiter", r"sourcer")),
    (FINANCE, _words(r"accountant", r"bookkeeper", r"actuary")),
    (MARKETING, _words(r"copywriter", r"marketer")),
)


def categorize(title: str | None, tags: Sequence[str] = (), department: str | None = None) -> str:
    """One of `CATEGORIES` for a job, from its title, then department, then tags; `other` when none
    of them says.

    The title's role part is the first part that names a role ("Pioneer Talent Program - Full Stack
    Engineer": the engineer), read up to its role noun; the rest qualifies it. A title that names a role
    no rule knows ("Crypto Trader Specialist") is `other`: the source's loose tags never decide it."""
    parts = [part for part in _QUALIFIER.split(_PAY.sub(" ", title or "")) if part and match_text(part)]
    named = [i for i, part in enumerate(parts) if _HEADS.search(match_text(part))]
    at = named[0] if named else 0
    role = _up_to_head(parts[at]) if parts else ""
    qualifiers = " ".join(parts[:at] + parts[at + 1:])
    if role in _GENERIC_HEADS and qualifiers:
        # a bare role noun that names no work ("Analyst, Licensing Finance"): what qualifies it says more
        category = _category(qualifiers) or _category(role, decisive=True)
    else:
        category = _category(role, decisive=True) or _category(qualifiers)
    category = category or _category(department)
    if category is not None:
        return category
    if named:
        return OTHER
    votes = Counter(category for category in map(_category, tags) if category is not None)
    if votes:
        # the most tags decide; a tie goes to the category listed first in CATEGORIES
        order = {category: i for i, category in enumerate(CATEGORIES)}
        return min(votes, key=lambda category: (-votes[category], order[category]))
    return OTHER


def _up_to_head(part: str) -> str:
    """A role part up to its last role noun ("tech lead ai coding" → "tech lead"; "staff product manager"
    whole: staff qualifies the manager), keeping an "of …" after it ("head of product")."""
    text = _ASSISTANT_TO.sub("", match_text(part))
    heads = list(_HEADS.finditer(text))
    if not heads or heads[-1].start() == 0:
        return text  # "Director Enterprise Sales": a leading title, the rest is what it directs
    rest = text[heads[-1].end():]
    return text if rest.startswith((" of ", " de ")) else text[:heads[-1].end()]


def _category(text: str | None, *, decisive: bool = False) -> str | None:
    if not text:
        return None
    text = match_text(text)
    if not text:
        return None
    for category, pattern in _PHRASES:
        if pattern.search(text):
            return category
    if decisive:
        for category, pattern in _DECISIVE_HEADS:
            if pattern.search(text):
                return category
    for category, pattern in _RULES:
        if pattern.search(text):
            return category
    return None
