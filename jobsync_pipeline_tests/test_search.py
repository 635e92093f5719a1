"""A saved search's parameters and the reasons a job matched (core/search.py, no store)."""
import pytest
from pydantic import ValidationError

from jobsync_pipeline.core.search import SearchParameters, parse_client_context, reasons, valid_timezone


def test_a_search_needs_a_filter():
    with pytest.raises(ValidationError, match="at least one filter"):
        SearchParameters()
    with pytest.raises(ValidationError, match="at least one filter"):
        SearchParameters(keywords="   ", locations=("", " "))


@pytest.mark.parametrize("fields, problem", [
    ({"min_salary": -1}, "greater than or equal to 0"),
    ({"posted_within_days": 0}, "greater than 0"),
    ({"sources": ("monster",)}, "unknown source 'monster'"),
    ({"categories": ("wizardry",)}, "unknown category 'wizardry'"),
    ({"keywords": "!!! ???"}, "hold no word"),
    ({"keywords": "x" * 301}, "at most 300 characters"),
    ({"remote": True, "colour": "blue"}, "Extra inputs are not permitted"),
])
def test_absurd_parameters_are_refused(fields, problem):
    with pytest.raises(ValidationError, match=problem):
        SearchParameters(**fields)


def test_parameters_are_cleaned_and_kept_as_json():
    p = SearchParameters(keywords="  Senior   C++  engineer ", locations=("London", "London", " Berlin "),
                         sources=("lever", "lever"))
    assert p.keywords == "Senior C++ engineer" and p.words() == ["senior", "c++", "engineer"]
    assert p.locations == ("London", "Berlin") and p.sources == ("lever",)
    assert SearchParameters.model_validate_json(p.to_json()) == p
    assert p.regions() == {"London": None, "Berlin": None}
    assert SearchParameters(locations=("Deutschland",)).regions() == {"Deutschland": "Germany"}


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]", "must be a JSON object"), ("{oops", "not JSON"), ('{"a": "' + "x" * 5000 + '"}', "at most 4,096"),
])
def test_a_client_context_is_a_small_json_object(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_client_context(text)
    assert parse_client_context('{"b": 1, "a": "phone"}') == '{"a": "phone", "b": 1}'
    assert parse_client_context(None) is None


def test_time_zones_are_iana_names():
    assert valid_timezone("America/New_York") == "America/New_York"
    for bad in ("Mars/Base", "", "../../etc/passwd"):
        with pytest.raises(ValueError, match="is not a time zone"):
            valid_timezone(bad)


def test_reasons_say_why_a_job_matched():
    p = SearchParameters(keywords="python", locations=("Germany",), remote=True, min_salary=80_000)
    job = {"title": "Python Developer", "location": "Remote - EU", "workplace_regions": '["Germany"]',
           "salary_annual_max": 120_000.0, "source": "lever"}
    assert reasons(p, job) == ["title has python", "in Germany", "remote", "salary up to 120,000 a year"]
    assert reasons(SearchParameters(keywords="django"), {"title": "Engineer"}) == ["title or description has django"]
