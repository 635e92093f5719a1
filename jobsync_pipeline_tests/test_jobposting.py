"""schema.org JobPosting: what is extracted from each shape of page, and how every field maps to a Posting."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from jobsync_pipeline.core.models import MAX_ID_LENGTH
from jobsync_pipeline.core.salary import salary_from_range
from jobsync_pipeline.core.workplace import infer_workplace
from jobsync_pipeline.sources.collect import PostingCollector
from jobsync_pipeline.sources.jobposting import (NO_POSTING, extract_job_postings, fitted_id, job_posting,
                                                 language_code)
from jobsync_pipeline_tests.local_site import JOB_PAGES, html_page

PAGE = "https://jobs.example.org/jobs/42?ref=search"


def posting(**fields):
    return {"@type": "JobPosting", "title": "Engineer", **fields}


def extract(path: str):
    return extract_job_postings(JOB_PAGES[path], f"http://127.0.0.1:8000{path}")


def build(item: dict, page_url: str = PAGE):
    built, listed = job_posting(item, page_url, "example")
    assert listed
    return built


# --- extraction ----------------------------------------------------------------------------------------


def test_a_graph_yields_its_job_posting_only():
    found = extract("/jobs/graph")
    assert [p["title"] for p in found.postings] == ["Senior Python Engineer"]
    assert found.problem is None and found.language == "en"


def test_a_top_level_list_yields_every_posting():
    found = extract("/jobs/pair")
    assert [p["identifier"] for p in found.postings] == [1001, "PAIR-2"]


@pytest.mark.parametrize("kind", [["JobPosting"], "http://schema.org/JobPosting", ["Thing", "schema:JobPosting"]])
def test_type_as_a_list_or_with_its_vocabulary(kind):
    found = extract_job_postings(html_page(json_ld=(posting(**{"@type": kind}),)), PAGE)
    assert len(found.postings) == 1


def test_a_posting_as_a_pages_main_entity():
    page = {"@context": "https://schema.org", "@type": "WebPage", "mainEntity": posting(title="Nested")}
    assert [p["title"] for p in extract_job_postings(html_page(json_ld=(page,)), PAGE).postings] == ["Nested"]


def test_microdata_with_nested_organization_and_address():
    [item] = extract("/jobs/microdata").postings
    assert item["title"] == "Data & ML Engineer"
    assert item["hiringOrganization"]["name"] == "Microdata Labs"
    assert item["jobLocation"]["address"]["addressLocality"] == "Ho Chi Minh City"
    assert item["url"] == "http://127.0.0.1:8000/jobs/microdata"  # resolved against the page


def test_a_page_without_a_posting_says_so():
    found = extract("/jobs/empty")
    assert found.postings == [] and found.problem == NO_POSTING


def test_malformed_json_ld_alone_is_the_pages_problem():
    found = extract("/jobs/broken")
    assert found.postings == []
    assert found.problem == "malformed JSON-LD: Expecting ',' delimiter at line 1 column 77"


def test_a_good_block_beside_a_malformed_one_is_kept():
    found = extract("/jobs/mixed")
    assert [p["title"] for p in found.postings] == ["Mixed Blocks Engineer"]
    assert found.problem is None and len(found.malformed) == 1


def test_json_ld_with_comments_is_read_as_extruct_reads_it():
    block = '<!-- generated -->\n' + json.dumps(posting())
    assert len(extract_job_postings(html_page(json_ld=(block,)), PAGE).postings) == 1


def test_item_list_urls_in_every_list_item_form():
    item_list = {"@type": "ItemList", "itemListElement": [
        {"@type": "ListItem", "position": 1, "url": "/jobs/1"},
        {"@type": "ListItem", "position": 2, "item": "https://jobs.example.org/jobs/2"},
        {"@type": "ListItem", "position": 3, "item": {"@type": "JobPosting", "url": "jobs/3"}},
        "/jobs/4", {"@type": "ListItem", "url": "/jobs/1"}]}
    found = extract_job_postings(html_page(json_ld=({"@graph": [item_list]},)), "https://jobs.example.org/search")
    assert found.item_urls == [f"https://jobs.example.org/jobs/{n}" for n in (1, 2, 3, 4)]
    assert found.problem == NO_POSTING  # a listing page carries no posting of its own


def test_language_from_html_lang_else_from_the_posting():
    assert extract("/jobs/vi").language == "vi"
    no_lang = html_page(json_ld=(posting(inLanguage={"@type": "Language", "name": "Vietnamese"}),), lang=None)
    assert extract_job_postings(no_lang, PAGE).language == "vi"
    assert extract_job_postings(html_page(lang="en-GB"), PAGE).language == "en"


@pytest.mark.parametrize(("value", "code"), [("vi-VN", "vi"), ("en_US", "en"), ("VIE", "vi"), ("German", "de"),
                                             ({"alternateName": "fr"}, "fr"), ("", None), (7, None)])
def test_language_codes(value, code):
    assert language_code(value) == code


def test_a_legacy_charset_is_read_from_the_meta():
    body = ('<html lang="fr"><head><meta charset="windows-1252"><script type="application/ld+json">'
            + json.dumps(posting(title="Ingénieur"), ensure_ascii=False) + "</script></head></html>").encode("cp1252")
    assert extract_job_postings(body, PAGE).postings[0]["title"] == "Ingénieur"


@pytest.mark.parametrize("page", [
    "", b"", b"\x00\xff\xfe", "<html", "<?xml version='1.0' encoding='utf-8'?><html><body>x</body></html>",
    html_page(json_ld=("[" * 100_000,)), html_page(json_ld=("[1, 2]", '"text"', "null", "   ")),
    '<div itemscope itemtype="https://schema.org/JobPosting" itemref="a"><span id="a" itemprop="title" itemref="a">'
    "x</span></div>", b"<html>\xc3\x28 bad utf-8</html>"])
def test_never_raises(page):
    found = extract_job_postings(page, PAGE)
    assert found.problem is not None or found.postings


# --- mapping ---------------------------------------------------------------------------------------------


def test_every_field_of_a_full_posting():
    item = extract("/jobs/graph").postings[0]
    built = build(item, "http://127.0.0.1:8000/jobs/graph")
    assert (built.source, built.board, built.external_id) == ("site_crawl", "example", "ACME-101")
    assert (built.title, built.company) == ("Senior Python Engineer", "Acme")
    assert built.location == "Hanoi, HN, VN; Da Nang, Vietnam"
    assert built.url == "http://127.0.0.1:8000/jobs/graph"
    assert built.posted_date == "2026-11-20"
    assert built.description == "Build the platform.\nPython\nSQL"
    assert built.requirements == "[]"
    details = built.details
    assert (details.salary_min, details.salary_max, details.salary_currency) == (40000.0, 60000.0, "USD")
    assert (details.salary_interval, details.salary_source, details.salary_text) == ("year", "baseSalary", None)
    assert details.valid_through == "2027-01-31T10:00:00+00:00"
    assert json.loads(details.tags) == ["FULL_TIME", "CONTRACTOR"]
    assert details.workplace_type is None and details.region_restrictions is None
    assert details.description_raw == item["description"] and details.description_format == "html"


def test_entities_in_title_company_and_an_escaped_description():
    built = build(extract("/jobs/entities").postings[0])
    assert (built.title, built.company) == ("R&D Engineer – Tools", "Smith & Sons")
    assert built.details.description_format == "escaped_html"
    assert built.description == "Fish & chips, every Friday"
    assert built.details.description_raw.startswith("&lt;p&gt;")


def test_an_hourly_range_is_annualized_by_the_salary_rules():
    details = build(extract("/jobs/hourly").postings[0]).details
    assert (details.salary_min, details.salary_max, details.salary_currency, details.salary_interval) == (
        25.0, 35.5, "EUR", "hour")
    salary = salary_from_range(details.salary_min, details.salary_max, details.salary_currency,
                               details.salary_interval)
    assert (salary.annual_min, salary.annual_max, salary.period_basis) == (52000.0, 73840.0, "stated")


@pytest.mark.parametrize(("base", "expected"), [
    (2500, (2500.0, 2500.0, None, None, None)),
    ("1,500", (1500.0, 1500.0, None, None, None)),
    ("$40-60/hour", (None, None, None, None, "$40-60/hour")),
    ({"@type": "MonetaryAmount", "currency": "vnd", "minValue": "10000000", "maxValue": 20000000, "unitText": "MONTH"},
     (10000000.0, 20000000.0, "VND", "month", None)),
    ({"@type": "MonetaryAmount", "currency": "USD", "value": 30}, (30.0, 30.0, "USD", None, None)),
    ({"@type": "MonetaryAmount", "currency": "USD",
      "value": {"@type": "QuantitativeValue", "value": "4000", "unitText": "WEEK"}},
     (4000.0, 4000.0, "USD", "week", None)),
    ({"@type": "MonetaryAmount", "currency": "USD", "value": {"@type": "QuantitativeValue"}}, (None,) * 5),
    (None, (None,) * 5),
])
def test_base_salary_shapes(base, expected):
    details = build(posting(baseSalary=base)).details
    got = (details.salary_min, details.salary_max, details.salary_currency, details.salary_interval,
           details.salary_text)
    assert got == expected
    assert details.salary_source == (None if expected == (None,) * 5 else "baseSalary")


def test_telecommute_with_applicant_countries_is_remote_there():
    built = build(posting(jobLocationType=["TELECOMMUTE"], applicantLocationRequirements=[
        {"@type": "Country", "name": "Vietnam"}, {"@type": "State", "name": "California"}, "Canada",
        {"@type": "Country", "name": "Vietnam"}]))
    assert built.details.workplace_type == "remote"
    assert json.loads(built.details.region_restrictions) == ["Vietnam", "California", "Canada"]
    assert built.location == "Vietnam, California, Canada"
    workplace = infer_workplace(workplace_type=built.details.workplace_type,
                                restrictions=json.loads(built.details.region_restrictions), location=built.location)
    assert workplace.kind == "remote" and "Vietnam" in workplace.regions and "Canada" in workplace.regions


def test_telecommute_alone_and_applicant_places_of_an_office_job():
    remote = build(posting(jobLocationType="telecommute"))
    assert (remote.details.workplace_type, remote.details.region_restrictions, remote.location) == (
        "remote", None, "Remote")
    office = build(posting(applicantLocationRequirements={"@type": "Country", "name": "US"},
                           jobLocation={"@type": "Place", "address": "1 Main St, Springfield"}))
    assert (office.details.workplace_type, office.details.region_restrictions) == (None, None)
    assert office.location == "1 Main St, Springfield"


@pytest.mark.parametrize(("location", "text"), [
    ({"@type": "Place", "address": {"addressLocality": "Berlin", "addressCountry": {"@type": "Country",
                                                                                    "name": "Germany"}}},
     "Berlin, Germany"),
    ([{"address": {"addressLocality": "Hanoi", "addressCountry": "VN"}},
      {"address": {"addressLocality": "Hanoi", "addressCountry": "VN"}}], "Hanoi, VN"),
    ({"@type": "Place", "name": "Head office"}, "Head office"),
    ("Lyon", "Lyon"),
    ({"address": {"addressLocality": "Ho Chi Minh City", "addressRegion": "Ho Chi Minh City",
                  "addressCountry": "VN"}}, "Ho Chi Minh City, VN"),
])
def test_job_locations(location, text):
    assert build(posting(jobLocation=location)).location == text


@pytest.mark.parametrize(("stated", "utc"), [
    ("2027-01-31T17:00:00+07:00", "2027-01-31T10:00:00+00:00"),
    ("2027-01-31T17:00:00Z", "2027-01-31T17:00:00+00:00"),
    ("2027-01-31T17:00:00", "2027-01-31T17:00:00+00:00"),
    ("2020-01-31", "2020-01-31T23:59:59+00:00"),
    ("next month", None), ("", None),
])
def test_valid_through_in_utc(stated, utc):
    assert build(posting(validThrough=stated)).details.valid_through == utc


def test_a_past_valid_through_is_still_listed_for_the_store_to_expire():
    built, listed = job_posting(extract("/jobs/expired").postings[0], PAGE, "example")
    assert listed and built.details.valid_through == "2020-01-31T23:59:59+00:00"


@pytest.mark.parametrize(("stated", "day"), [("2026-11-20T23:30:00-05:00", "2026-11-20"), ("2026-11-20", "2026-11-20"),
                                             ("2026-13-45", None), ("20/11/2026", None), (None, None)])
def test_date_posted(stated, day):
    assert build(posting(datePosted=stated)).posted_date == day


@pytest.mark.parametrize(("fields", "external_id", "url"), [
    ({"identifier": "J-1", "url": "/jobs/1"}, "J-1", "https://jobs.example.org/jobs/1"),
    ({"identifier": {"@type": "PropertyValue", "name": "Acme", "value": 77}}, "77", PAGE),
    ({"identifier": 12345}, "12345", PAGE),
    ({"identifier": [{"@type": "PropertyValue", "value": ""}, "second"]}, "second", PAGE),
    ({"url": "https://jobs.example.org/jobs/9"}, "https://jobs.example.org/jobs/9", "https://jobs.example.org/jobs/9"),
    ({}, PAGE, PAGE),
])
def test_external_id_and_url(fields, external_id, url):
    built = build(posting(**fields))
    assert (built.external_id, built.url) == (external_id, url)


def test_long_ids_are_fitted_stably_and_distinctly():
    base = "https://jobs.example.org/jobs/1?" + "utm_source=x&" * 30
    first, second = build(posting(url=base + "a")), build(posting(url=base + "b"))
    assert len(first.external_id) == MAX_ID_LENGTH and first.external_id != second.external_id
    assert first.external_id == fitted_id(base + "a") and first.external_id.startswith(base[:200])
    assert first.url == base + "a"  # the URL itself is kept whole
    assert fitted_id("short") == "short"


def test_employment_type_and_category_are_tags():
    assert json.loads(build(posting(employmentType="PART_TIME", occupationalCategory="15-1252.00 Software "
                                                                                     "Developers")).details.tags) == [
        "PART_TIME", "15-1252.00 Software Developers"]
    assert build(posting()).details.tags is None


def test_company_as_text_or_missing():
    assert build(posting(hiringOrganization="Acme &amp; Co")).company == "Acme & Co"
    assert build(posting()).company == ""


def test_microdata_maps_like_json_ld():
    built = build(extract("/jobs/microdata").postings[0])
    assert (built.external_id, built.title, built.company) == ("MD-7", "Data & ML Engineer", "Microdata Labs")
    assert built.location == "Ho Chi Minh City, Vietnam"
    assert (built.details.salary_min, built.details.salary_currency, built.details.salary_interval) == (
        30000000.0, "VND", "month")
    assert built.description == "Train models. Ship them." and built.posted_date == "2026-11-18"


@pytest.mark.parametrize(("item", "error"), [
    (posting(title=""), ValidationError), ({"@type": "JobPosting"}, ValidationError),
    (posting(title="&nbsp; "), ValidationError), ("a posting", ValueError), (None, ValueError)])
def test_a_posting_that_cannot_be_one_raises(item, error):
    with pytest.raises(error):
        job_posting(item, PAGE, "example")


def test_bad_postings_land_in_bad_records_with_reasons():
    collector = PostingCollector(lambda item: job_posting(item, PAGE, "example"))
    snapshot = collector.snapshot("example", [posting(identifier="ok"), {"@type": "JobPosting"}, posting(title=" ")])
    assert list(snapshot.postings.external_id) == ["ok"]
    assert [(r.position, r.reason) for r in snapshot.bad_records] == [
        (1, "title: Field required"), (2, "title: String should have at least 1 character")]


def test_every_local_site_page_extracts_without_error():
    for path in JOB_PAGES:
        found = extract(path)
        assert found.postings or found.problem, path
