"""The four API parsers on real payloads recorded by other public projects (fixtures/recorded, see its
SOURCES.md): salaries with their provenance, repaired text, workplace, regions and categories, as the
store would write them."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from functools import cache

import pandas as pd
import pycountry
import pytest

from jobsync_pipeline.core.categories import categorize
from jobsync_pipeline.core.enrich import derive
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.core.regions import fold
from jobsync_pipeline.core.workplace import named_places
from jobsync_pipeline.sources.greenhouse import parse_greenhouse
from jobsync_pipeline.sources.himalayas import parse_himalayas
from jobsync_pipeline.sources.lever import parse_lever
from jobsync_pipeline.sources.remoteok import parse_remoteok
from jobsync_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

RECORDED = FIXTURES / "recorded"
LABELS = PROJECT_ROOT / "jobsync_pipeline_tests" / "data" / "labelled_titles.jsonl"
# each connector archives Lever and Himalayas as a JSON array of their pages
PARSERS = {"greenhouse": (parse_greenhouse, False), "lever": (parse_lever, True),
           "remoteok": (parse_remoteok, False), "himalayas": (parse_himalayas, True)}


def parse(path, company=None):
    parser, paged = PARSERS[path.parent.name]
    body = path.read_bytes()
    payload = RawPayload(board=path.name.split(".")[0].lower(), location=str(path),
                         body=b"[" + body + b"]" if paged else body, fetched_at=datetime.now(timezone.utc))
    return parser(payload, company) if company else parser(payload)


@cache
def written(source: str) -> pd.DataFrame:
    """Every recorded posting of a source as the store writes it: the posting's columns and the derived."""
    frames = [parse(path).postings for path in sorted((RECORDED / source).glob("*.json"))]
    rows = pd.concat(frames, ignore_index=True)
    return pd.concat([rows, derive(rows)], axis=1).set_index("external_id", drop=False)


def test_every_recorded_posting_parses():
    for source in PARSERS:
        for path in sorted((RECORDED / source).glob("*.json")):
            parsed = parse(path)
            assert parsed.found > 0, path
            # RemoteOK's recordings hold one posting without a title: refused, counted, kept aside
            assert len(parsed.bad_records) <= 1, (path, parsed.bad_records)


# --- salaries, with where each was read ----------------------------------------------------------

def test_greenhouse_reads_the_pay_block_of_the_content():
    jobs = written("greenhouse")
    duolingo = jobs.loc["8455252002"]
    assert duolingo.salary_source == "content_pay_range"
    assert duolingo.salary_text == "Salary Range: £81,999—£110,940 GBP"
    assert (duolingo.salary_annual_min, duolingo.salary_annual_max, duolingo.salary_period) == (81999, 110940, "year")
    gitlab = jobs.loc["8565469002"]
    assert gitlab.salary_text == "United States Salary Range $108,400—$129,600 USD"
    assert gitlab.salary_period_basis == "inferred"  # Greenhouse states no interval: the size says yearly


def test_greenhouse_reads_a_pay_sentence_of_the_content():
    jobs = written("greenhouse")
    row = jobs.loc["7454336"]
    assert row.salary_source == "content"
    assert row.salary_text == "The national pay range for this role is $72,200.00 - $90,000.00 base pay."
    assert (row.salary_annual_min, row.salary_annual_max) == (72200, 90000)
    stripe = jobs[jobs.salary_text.fillna("").str.startswith("Salary: $182,208")].iloc[0]
    assert (stripe.salary_annual_min, stripe.salary_annual_max, stripe.salary_period_basis) == (182208, 236580, "text")
    hourly = jobs[jobs.salary_text.fillna("").str.contains("34.62/hour")].iloc[0]
    assert (hourly.salary_period, hourly.salary_annual_min) == ("hour", round(34.62 * 2080, 2))


def test_lever_keeps_the_closing_section_and_reads_its_salary():
    jobs = written("lever")
    row = jobs.loc["0bbfd4f4-41ff-4ec6-b73f-5200efd5d4d3"]
    assert row.salary_source == "additional"
    assert row.salary_text == "The estimated salary range for this position is estimated to be $60,000 - $97,000/year."
    assert (row.salary_annual_min, row.salary_annual_max, row.salary_period) == (60000, 97000, "year")
    assert "$60,000 - $97,000/year" in row.description  # the closing section is part of the description
    stated = jobs[jobs.salary_source == "salaryRange"]
    assert len(stated) >= 10 and set(stated.salary_period_basis) == {"stated"}


def test_lever_keeps_every_location_of_a_posting():
    jobs = written("lever")
    assert jobs.loc["8f870d45-fa09-4ea6-b90f-fa5906412692"].location == "South East Asia; Taiwan, Taipei; Hong Kong"
    regions = json.loads(jobs.loc["87033fe9-9dfd-4df4-97b5-d767d86c1634"].workplace_regions or "[]")
    spotify = jobs[jobs.location == "London; Stockholm"]
    assert len(spotify) == 1 and regions in ([], ["Asia", "Hong Kong", "Taiwan"])


def test_lever_uses_the_registry_name_of_the_site():
    parsed = parse(RECORDED / "lever" / "palantir.postings.subset10.json", company="Palantir Technologies")
    assert set(parsed.postings["company"]) == {"Palantir Technologies"}
    assert set(parse(RECORDED / "lever" / "palantir.postings.subset10.json").postings["company"]) == {"palantir"}


def test_remoteok_infers_the_interval_from_the_size():
    jobs = written("remoteok")
    row = jobs.loc["1131523"]  # salary_min 21, salary_max 24: an hourly rate, not a yearly salary
    assert (row.salary_min, row.salary_max, row.salary_interval) == (21, 24, None)
    assert (row.salary_period, row.salary_period_basis, row.salary_source) == ("hour", "inferred", "salary_min/salary_max")
    assert (row.salary_annual_min, row.salary_annual_max) == (21 * 2080, 24 * 2080)


def test_himalayas_maps_salary_period_to_the_interval():
    jobs = written("himalayas")
    monthly = jobs[jobs.salary_interval == "monthly"]
    hourly = jobs[jobs.salary_interval == "hourly"]
    assert len(monthly) == 9 and len(hourly) >= 10
    assert set(monthly.salary_period) == {"month"} and set(hourly.salary_period) == {"hour"}
    assert set(monthly.salary_period_basis) == {"stated"}
    assert (monthly.salary_annual_min == monthly.salary_min * 12).all()


# --- text -----------------------------------------------------------------------------------------

def test_remoteok_mojibake_is_repaired_and_counted():
    jobs = written("remoteok")
    assert jobs.loc["1130733"].company == "Zócalo Health"
    assert jobs.loc["1130779"].location == "Gdańsk"
    assert jobs.loc["1133077"].title == "Principal Operations Engineer Hardware — Data Center Operations"
    assert parse(RECORDED / "remoteok" / "api.JACKAS5.json").repaired > 50
    for source in PARSERS:  # nothing of the shape is left anywhere
        for column in ("title", "company", "location", "description"):
            left = written(source)[column].fillna("").str.contains("Ã[\u0080-\u00bf]|â\u0080", regex=True)
            assert not left.any(), (source, column, written(source)[left][column].head(3).tolist())


def test_locations_lose_the_separators_sources_leave_at_their_ends():
    jobs = written("remoteok")
    assert [jobs.loc[i].location for i in ("1135929", "1136039", "1135927")] == ["How", "Sonipat", "Ashreigney"]
    for source in PARSERS:
        assert not written(source).location.str.contains(r"(?:^[\s,;|/-])|(?:[\s,;|/-]$)", regex=True).any(), source


def test_a_placeholder_company_name_falls_back_to_the_slug():
    jobs = written("himalayas")
    assert "name" not in set(jobs.company.str.casefold())
    gamer = parse(RECORDED / "himalayas" / "jobs.TheGamer406.json").postings
    assert list(gamer.company) == ["Alignment Health", "Gt Ecom", "Mercor"]


# --- workplace, regions and categories ------------------------------------------------------------

def test_every_remoteok_job_is_remote():
    assert set(written("remoteok").workplace) == {"remote"}


def _countries() -> dict[str, str]:
    names = {}
    for country in pycountry.countries:
        for name in (country.name, getattr(country, "common_name", None)):
            if name and "," not in name and len(fold(name)) > 2:
                names[fold(name)] = name
    return names


def recorded_locations() -> list[str]:
    locations: set[str] = set()
    for source in PARSERS:
        locations.update(written(source).location)
        for restrictions in written(source).region_restrictions.dropna():
            locations.update(json.loads(restrictions))
    return sorted(location for location in locations if location)


def test_a_country_a_location_names_is_one_of_its_regions():
    """Every recorded location string: each part that is a country's name resolves to a region (a
    state named like a country after a city, "Atlanta, Georgia", excepted)."""
    countries = _countries()
    missed = []
    for location in recorded_locations():
        regions, _ = named_places(location)
        parts = [fold(part) for part in re.split(r"\s*(?:[,;/|()]|\s-\s)\s*", location)]
        for i, part in enumerate(parts):
            if part in countries and not (part == "georgia" and i > 0) and not regions:
                missed.append(location)
    assert missed == []


@pytest.mark.parametrize("location, regions", [
    ("Remote-North & South America", ("North America", "South America")),
    ("Remote, Italy", ("Italy",)),
    ("Bangalore, India - Remote", ("India",)),
    ("US-Chicago; US-Atlanta; US-Remote; Canada-Toronto; Canada-Remote", ("US", "Canada")),
    ("Ankara, Türkiye - Remote", ("Turkey",)),
    ("Svalbard and Jan Mayen", ("Svalbard and Jan Mayen",)),
    ("Anywhere in the United States", ("US",)),
    ("Atlanta, Georgia", ()),
])
def test_the_region_resolver_on_locations_from_recordings(location, regions):
    # as the recordings write them (some from files kept out of fixtures/recorded for their size)
    assert named_places(location)[0] == regions


def test_category_accuracy_on_labelled_real_titles():
    """420 titles sampled from these recordings, labelled by hand (data/labelled_titles.jsonl)."""
    rows = [json.loads(line) for line in LABELS.read_text().splitlines()]
    right = sum(categorize(r["title"], r["tags"], r["department"]) == r["category"] for r in rows)
    assert len(rows) >= 300 and right / len(rows) >= 0.90, f"{right}/{len(rows)}"


@pytest.mark.parametrize("title, tags, category", [
    ("Physics Expert - Fully Remote | Upto $135/hr", [], "other"),  # a pay unit is not a department (hr)
    ("Customer Data Scientist", [], "data"),
    ("Crypto Trader", ["crypto", "engineer", "dev"], "finance"),  # the title's word, not the feed's tags
    ("Falconry Coach", ["dev", "engineer"], "other"),  # a role no rule knows: not the tags' to decide
])
def test_title_words_outrank_tags_and_pay_units(title, tags, category):
    assert categorize(title, tags) == category
