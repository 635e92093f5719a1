import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobsync_pipeline.core.salary import (PERIODS_PER_YEAR, UNKNOWN, annualize, parse_interval, parse_salary_text, pay_text_in,
                                          salary_from_range)


@pytest.mark.parametrize(("interval", "factor"), [("hour", 2080), ("day", 260), ("week", 52), ("month", 12),
                                                  ("year", 1)])
def test_one_annualization_rule(interval, factor):
    assert PERIODS_PER_YEAR[interval] == factor
    assert annualize(10.0, interval) == 10.0 * factor


@pytest.mark.parametrize(("said", "interval"), [
    ("per-year-salary", "year"), ("per-month-salary", "month"), ("per-hour-wage", "hour"),
    ("per-week-salary", "week"), ("per-day-wage", "day"), ("Yearly", "year"), ("HOURLY", "hour"), ("annual", "year"),
    ("yr", "year"), ("one-time", None), ("", None), (None, None)])
def test_source_intervals(said, interval):
    assert parse_interval(said) == interval


def test_lever_hourly_range_annualized():
    salary = salary_from_range(60, 80, "USD", "per-hour-wage")
    assert (salary.min, salary.max, salary.currency, salary.interval) == (60, 80, "USD", "hour")
    assert (salary.annual_min, salary.annual_max) == (124_800, 166_400)


def test_bounds_as_strings_swapped_or_zero():
    assert salary_from_range("90,000", "120000", "usd", "per-year-salary").annual_min == 90_000
    swapped = salary_from_range(150_000, 100_000, "EUR", None)
    assert (swapped.min, swapped.max, swapped.interval) == (100_000, 150_000, "year")
    only_max = salary_from_range(0, 120_000, "USD", None)  # RemoteOK writes 0 for "not stated"
    assert (only_max.min, only_max.annual_max) == (None, 120_000)


@pytest.mark.parametrize("bounds", [(None, None), (0, 0), ("abc", "n/a"), (True, False), (-5, -1),
                                    (float("nan"), float("inf")), ([1], {"a": 2})])
def test_malformed_bounds_are_unknown(bounds):
    salary = salary_from_range(*bounds, "USD", "per-year-salary")
    assert salary.annual_min is None and salary.annual_max is None and not salary.known


def test_implausible_annual_figures_are_unknown_but_kept():
    cents_as_dollars = salary_from_range(12_000_000, 15_000_000, "USD", "per-year-salary")
    assert (cents_as_dollars.min, cents_as_dollars.annual_min) == (12_000_000, None)


def test_unknown_interval_between_hourly_and_yearly_is_not_guessed():
    salary = salary_from_range(4_000, 6_000, "EUR", None)
    assert salary.interval is None and not salary.known
    assert salary_from_range(45, 55, "USD", None).interval == "hour"


@pytest.mark.parametrize(("text", "expected"), [
    ("$120,000 - $150,000", (120_000, 150_000, "USD", "year")),
    ("€50k–70k per year", (50_000, 70_000, "EUR", "year")),
    ("USD 60/hr", (124_800, 124_800, "USD", "hour")),
    ("£400 a day", (104_000, 104_000, "GBP", "day")),
    ("$5,000/month", (60_000, 60_000, "USD", "month")),
    ("CHF 120'000 - 140’000", (120_000, 140_000, "CHF", "year")),
    ("100 000 € brutto", (100_000, 100_000, "EUR", "year")),
    ("80K - 95K", (80_000, 95_000, None, "year")),
    ("$60 - $80 per hour", (124_800, 166_400, "USD", "hour")),
    ("Salary: 1.2M JPY annually", (1_200_000, 1_200_000, "JPY", "year")),
])
def test_salary_text(text, expected):
    salary = parse_salary_text(text)
    assert (salary.annual_min, salary.annual_max, salary.currency, salary.interval) == expected
    assert salary.text == text


def test_text_default_currency_and_unreadable_text():
    assert parse_salary_text("90k-110k", default_currency="cad").currency == "CAD"
    competitive = parse_salary_text("Competitive, with equity")
    assert competitive.text == "Competitive, with equity" and not competitive.known
    assert parse_salary_text(None) is UNKNOWN and parse_salary_text("") is UNKNOWN


@given(st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.text()),
       st.one_of(st.none(), st.floats(allow_nan=True), st.integers(), st.text()),
       st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_never_raises_and_annual_is_finite_and_ordered(minimum, maximum, currency, interval):
    salary = salary_from_range(minimum, maximum, currency, interval)
    for value in (salary.annual_min, salary.annual_max):
        assert value is None or (math.isfinite(value) and value > 0)
    if salary.annual_min is not None and salary.annual_max is not None:
        assert salary.annual_min <= salary.annual_max


@given(st.text())
def test_text_never_raises(text):
    parse_salary_text(text)


def test_how_the_interval_was_found_is_kept():
    assert salary_from_range(60, 80, "USD", "per-hour-wage").period_basis == "stated"
    assert salary_from_range(21, 24, "USD").period_basis == "inferred"  # RemoteOK states none
    assert (salary_from_range(21, 24, "USD").interval, salary_from_range(21, 24, "USD").annual_min) == ("hour", 21 * 2080)
    assert salary_from_range(3000, 4000, "EUR").period_basis is None  # month or year: unknown, so none
    assert parse_salary_text("$95.4K–$190K annually").period_basis == "text"
    assert parse_salary_text("Salary Range: $108,400—$129,600 USD").period_basis == "inferred"


@pytest.mark.parametrize("text, low, high", [
    ("$150-$190K OTE", 150_000, 190_000),  # the multiplier written once
    ("€50–70k", 50_000, 70_000),
    ("$90,000.00 - $100,000.00 per year", 90_000, 100_000),  # cents do not become a third amount
    ("£81,999—£110,940 GBP", 81_999, 110_940),
])
def test_amounts_as_job_ads_write_them(text, low, high):
    salary = parse_salary_text(text)
    assert (salary.min, salary.max) == (low, high)


def test_the_sentence_that_states_pay_is_found_in_a_description():
    lines = ["About us", "We are backed (~$200M in funding) by great investors.", "Salary Range:",
             "$108,400—$129,600 USD", "Benefits"]
    assert pay_text_in(lines) == "Salary Range: $108,400—$129,600 USD"
    assert pay_text_in(["The national pay range for this role is $72,200.00 - $90,000.00 base pay. Bonus "
                        "eligible."]) == "The national pay range for this role is $72,200.00 - $90,000.00 base pay."
    assert pay_text_in(["Competitive salary and equity.", "We raised $20M."]) is None
