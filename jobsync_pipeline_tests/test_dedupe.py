import pytest

from jobsync_pipeline.core.dedupe import (DIFFERENT, NEAR_TITLE, POSSIBLE, SAME, company_key, compare, location_key,
                                          title_key)


def job(title, company="Acme", location="Berlin, Germany"):
    return {"title": title, "company": company, "location": location}


def key(posting):
    return company_key(posting["company"]), title_key(posting["title"]), location_key(posting["location"])


# The same job as different sources write it: one canonical job (equal keys).
SAME_JOB = [
    (job("Senior Backend Engineer", "Acme, Inc.", "Remote - US"), job("Sr. Backend Engineer", "ACME", "Remote (US)")),
    (job("Senior Back-End Engineer"), job("senior backend engineer")),
    (job("Software Engineer II"), job("Software Engineer 2")),
    (job("Frontend Developer (Remote)", location="Remote"), job("Front-end Developer", location="Remote")),
    (job("Data Engineer", "The Acme Company"), job("Data Engineer", "Acme")),
    (job("Product Manager", "Acme GmbH", "Berlin"), job("Product Manager", "acme", "Berlin, Germany")),
    (job("Sr Mgr, Marketing Ops"), job("Senior Manager - Marketing Operations")),
    (job("Software Engineer (m/f/d)"), job("Software Engineer")),
    (job("DevOps Engineer", location="Remote (EU)"), job("DevOps Engineer", location="Remote - EU")),
    (job("Designer", location="Remote, US or Canada"), job("Designer", location="Remote (Canada / US)")),
    (job("Site Reliability Engineer", location="New York, NY"), job("Site Reliability Engineer",
                                                                      location="New York, New York, United States")),
    (job("ＳＲＥ"), job("sre")),
]

# Alike but not the same job: never one key. Some are possible duplicates (recorded), some not.
POSSIBLE_PAIRS = [
    (job("Data Engineer", location="Berlin, Germany"), job("Data Engineer", location="Lisbon, Portugal")),
    (job("Data Engineer", location="Berlin"), job("Data Engineer", location="")),
    (job("Senior Backend Engineer, Payments"), job("Senior Backend Engineer - Payment")),
    (job("Customer Success Manager"), job("Customer Success Manager, EMEA")),
    (job("Site Reliability Engineer"), job("Site Reliability Engineering")),
]
DIFFERENT_PAIRS = [
    (job("Senior Backend Engineer"), job("Staff Backend Engineer")),
    (job("Backend Engineer"), job("Senior Backend Engineer")),
    (job("Software Engineer II"), job("Software Engineer III")),
    (job("Data Engineer"), job("Data Analyst")),
    (job("Product Manager"), job("Product Designer")),
    (job("Data Engineer", "Acme"), job("Data Engineer", "Acme Bank")),
    (job("Data Engineer", "Acme"), job("Data Engineer", "Globex")),
    (job("Account Executive"), job("Account Manager")),
    (job("Engineer", ""), job("Engineer", "")),
]


@pytest.mark.parametrize(("a", "b"), SAME_JOB)
def test_the_same_job_spelled_differently_has_one_key(a, b):
    assert key(a) == key(b)
    verdict = compare(a, b)
    assert (verdict.verdict, verdict.score) == (SAME, 1.0)


@pytest.mark.parametrize(("a", "b"), POSSIBLE_PAIRS)
def test_weak_evidence_is_a_possible_duplicate_with_a_score_never_a_merge(a, b):
    assert key(a) != key(b)
    verdict = compare(a, b)
    assert verdict.verdict == POSSIBLE and 0 < verdict.score < 1 and verdict.reason
    assert compare(b, a) == verdict  # symmetric


@pytest.mark.parametrize(("a", "b"), DIFFERENT_PAIRS)
def test_other_jobs_are_not_duplicates(a, b):
    assert key(a) != key(b) or not key(a)[0]
    assert compare(a, b).verdict == DIFFERENT


def test_a_possible_duplicate_in_the_same_place_scores_above_one_elsewhere():
    near_here = compare(job("Senior Backend Engineer, Payments"), job("Senior Backend Engineer - Payment"))
    near_elsewhere = compare(job("Senior Backend Engineer, Payments"),
                             job("Senior Backend Engineer - Payment", location="Paris, France"))
    assert near_here.score > near_elsewhere.score > 0
    assert "same location" in near_here.reason and "different location" in near_elsewhere.reason


def test_keys_of_what_sources_really_write():
    assert company_key("Acme, Inc.") == company_key("ACME") == company_key("The Acme Co.") == "acme"
    assert company_key("Company") == "company"  # a legal word alone is the name
    assert title_key("Sr. Backend Engineer (Remote)") == "senior back end engineer"
    assert location_key("Remote - US") == location_key("Remote (US)") == "remote us"
    assert location_key("Anywhere") == location_key("Worldwide") == "remote worldwide"
    assert location_key("Remote") == "remote"  # a bare "Remote" often means the company's country: not anywhere
    assert location_key("USA, New York") == location_key("New York, USA") == "new york"
    assert location_key(None) == location_key("  ") == ""


def test_nearly_equal_is_a_documented_threshold():
    assert 0.5 < NEAR_TITLE < 1
