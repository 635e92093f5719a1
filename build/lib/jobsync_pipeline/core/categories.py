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
    (ENGINEERING, _words(r"security (?:analyst|engineer|architect)", r"technical writer", r"design engineer",
                         r"ui engineer", r"ui developer", r"data center technician", r"qa analyst",
                         r"test analyst", r"systems analyst", r"product engineer", r"growth engineer",
                         r"design verification")),
    (SUPPORT, _words(r"technical support", r"support engineer", r"customer success", r"customer support",
                     r"customer service", r"customer experience", r"customer care", r"it support",
                     r"product support", r"technical account manager")),
    (SALES, _words(r"sales engineer", r"solutions? engineer", r"solutions? consultant", r"pre sales",
                   r"sales development", r"account executive", r"business development")),
    (FINANCE, _words(r"revenue account(?:ant|ing)", r"revenue analyst")),
    (OPERATIONS, _words(r"revenue operations", r"business operations", r"sales operations", r"marketing operations",
                        r"bizops", r"revops", r"supply chain")),
    (FINANCE, _words(r"financial analyst", r"finance analyst", r"fp a", r"credit analyst", r"investment analyst")),
    (PEOPLE, _words(r"people operations", r"people partner", r"people analytics", r"talent acquisition")),
)
_RULES: tuple[tuple[str, re.Pattern], ...] = (
    (DESIGN, _words(r"designer", r"design", r"ux", r"ui", r"user experience", r"user research(?:er)?",
                    r"ux researcher", r"illustrator", r"art director", r"creative director", r"animator",
                    r"motion", r"visual", r"graphic")),
    (MARKETING, _words(r"marketing", r"marketer", r"seo", r"sem", r"copywriter", r"copy writer", r"brand", r"communications",
                       r"public relations", r"pr", r"social media", r"demand generation", r"demand gen",
                       r"influencer", r"media buyer", r"editor", r"writer", r"journalist",
                       r"content (?:writer|strategist|strategy|manager|creator|editor|specialist|lead|producer)",
                       r"community (?:manager|lead|specialist)", r"growth (?:manager|lead|hacker|marketer)",
                       r"lifecycle (?:manager|specialist)", r"crm (?:manager|specialist)",
                       r"events? (?:manager|coordinator|lead|specialist)")),
    (PRODUCT, _words(r"product (?:manager|management|owner|lead|director|head|operations|ops|analyst|"
                     r"strategist|specialist|leader)", r"head of product", r"director of product",
                     r"vice president of product", r"vice president product", r"vp (?:of )?product",
                     r"chief product", r"cpo", r"product")),
    (SALES, _words(r"sales", r"seller", r"account manager", r"account director", r"key account", r"bdr", r"sdr",
                   r"partnerships?", r"channel", r"closer", r"inside sales", r"territory")),
    (SUPPORT, _words(r"support", r"help ?desk", r"service desk", r"customer", r"onboarding", r"implementation",
                     r"client services")),
    (FINANCE, _words(r"finance", r"financial", r"accountant", r"accounting", r"controller", r"comptroller",
                     r"payroll", r"tax", r"treasury", r"treasurer", r"bookkeeper", r"bookkeeping", r"audit(?:or)?",
                     r"billing", r"accounts payable", r"accounts receivable", r"cfo", r"investor relations",
                     r"actuary", r"actuarial", r"fp a")),
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
                         r"smart contract", r"solidity", r"dev", r"coder", r"it", r"technician", r"hardware")),
    (OPERATIONS, _words(r"operations", r"ops", r"office", r"logistics", r"supply chain", r"purchasing", r"procurement", r"buyer",
                        r"administrative", r"administrator", r"admin", r"assistant", r"executive assistant",
                        r"chief of staff", r"project manager", r"program manager", r"programme manager",
                        r"project management", r"coordinator", r"facilities", r"workplace", r"warehouse",
                        r"fulfillment", r"fulfilment", r"dispatcher", r"scheduler", r"inventory", r"receptionist",
                        r"coo", r"general manager", r"strategy", r"compliance", r"risk")),
)
# Where a title qualifies its role: "Engineer, Payments", "Manager - Customer Success", "Engineer (Data)".
_QUALIFIER = re.compile(r"\s*(?:,|\(|\)|\||:|\s[-–—/]\s|\s@\s|\bat\b)\s*")


def categorize(title: str | None, tags: Sequence[str] = (), department: str | None = None) -> str:
    """One of `CATEGORIES` for a job, from its title, then department, then tags; `other` when none
    of them says."""
    parts = [part for part in _QUALIFIER.split(title or "") if part]
    role, qualifiers = (parts[0], " ".join(parts[1:])) if parts else ("", "")
    for text in (role, qualifiers, department):
        category = _category(text)
        if category is not None:
            return category
    votes = Counter(category for category in map(_category, tags) if category is not None)
    if votes:
        # the most tags decide; a tie goes to the category listed first in CATEGORIES
        order = {category: i for i, category in enumerate(CATEGORIES)}
        return min(votes, key=lambda category: (-votes[category], order[category]))
    return OTHER


def _category(text: str | None) -> str | None:
    if not text:
        return None
    text = match_text(text)
    if not text:
        return None
    for rules in (_PHRASES, _RULES):
        for category, pattern in rules:
            if pattern.search(text):
                return category
    return None
