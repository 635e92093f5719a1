"""What the store derives from a posting when it writes the job row: sanitized HTML, annual salary,
workplace, category and the cross-source dedupe keys.

Derived only for the rows a sync writes (new, changed, reactivated), never for unchanged postings,
and computed once per distinct input within a batch: a board repeats its company, locations and
titles, so a thousand postings need a few dozen categorizations.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

import pandas as pd

from jobsync_pipeline.core.categories import categorize
from jobsync_pipeline.core.dedupe import company_key, dedupe_key, place_key, title_key
from jobsync_pipeline.core.salary import UNKNOWN, parse_salary_text, salary_from_range
from jobsync_pipeline.core.sanitize import describe, text_as_html
from jobsync_pipeline.core.workplace import infer_workplace

DERIVED_COLUMNS = ("description_html", "salary_annual_min", "salary_annual_max", "salary_period",
                   "salary_period_basis", "workplace", "workplace_regions", "workplace_evidence", "category",
                   "company_key", "dedupe_key")


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """The derived columns (`DERIVED_COLUMNS`) of posting rows (`core.models.POSTING_COLUMNS`)."""
    return pd.DataFrame(derived_columns(rows), index=rows.index, dtype=object)  # one block: cheap for a small board too


def derived_columns(rows: pd.DataFrame) -> dict[str, list]:
    """`derive`'s columns as lists, for a caller that builds its own frame."""
    get = {name: rows[name].tolist() for name in (
        "title", "company", "location", "description", "description_raw", "description_format", "salary_min",
        "salary_max", "salary_currency", "salary_interval", "salary_text", "workplace_type",
        "region_restrictions", "department", "tags")}
    derived: dict[str, list] = {name: [] for name in DERIVED_COLUMNS}
    salary_of = _memo(_salary)
    workplace_of = _memo(_workplace)
    category_of = _memo(lambda title, tags, department: categorize(title, _json_list(tags), department))
    company_of, title_of, place_of = _memo(company_key), _memo(title_key), _memo(place_key)
    for i in range(len(rows)):
        title, company, location = get["title"][i], get["company"][i], get["location"][i]
        derived["description_html"].append(_safe_html(get["description"][i], get["description_raw"][i],
                                                       get["description_format"][i]))
        salary = salary_of(get["salary_min"][i], get["salary_max"][i], get["salary_currency"][i],
                           get["salary_interval"][i], get["salary_text"][i])
        derived["salary_annual_min"].append(salary.annual_min)
        derived["salary_annual_max"].append(salary.annual_max)
        derived["salary_period"].append(salary.interval)
        derived["salary_period_basis"].append(salary.period_basis)
        workplace = workplace_of(get["workplace_type"][i], get["region_restrictions"][i], location, title)
        derived["workplace"].append(workplace.kind)
        derived["workplace_regions"].append(json.dumps(list(workplace.regions), ensure_ascii=False)
                                            if workplace.regions else None)
        derived["workplace_evidence"].append(workplace.evidence)
        derived["category"].append(category_of(title, get["tags"][i], get["department"][i]))
        # the place is the derived workplace, not the location text: "Remote - US", "Remote (US)" and
        # Himalayas' restriction to "United States" are one place
        keys = company_of(company), title_of(title), place_of(workplace, location)
        derived["company_key"].append(keys[0][:255] or None)
        derived["dedupe_key"].append(dedupe_key(*keys))
    return derived


def _safe_html(text: str, raw: str | None, format_: str | None) -> str:
    if raw is None or format_ in (None, "text"):
        # a plain-text description (company files): its text, escaped, as HTML
        return text_as_html(raw if raw is not None else text)
    return describe(raw, escaped=format_ == "escaped_html").safe_html


def _salary(minimum, maximum, currency, interval, text):
    if minimum is not None or maximum is not None:
        return salary_from_range(minimum, maximum, currency, interval, text)
    if text:
        return parse_salary_text(text, default_currency=currency)
    return UNKNOWN


def _workplace(workplace_type, restrictions, location, title):
    regions = None if restrictions is None else _json_list(restrictions)
    return infer_workplace(workplace_type=workplace_type, restrictions=regions, location=location, title=title)


def _json_list(value: str | None) -> list[str]:
    if not value:
        return []
    try:
        items = json.loads(value)
    except ValueError:
        return []
    return [str(item) for item in items] if isinstance(items, list) else []


def _memo(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` computed once per distinct arguments (for one batch: the cache dies with it)."""
    cache: dict[Hashable, Any] = {}

    def cached(*args):
        try:
            return cache[args]
        except KeyError:
            value = cache[args] = function(*args)
            return value
        except TypeError:  # an unhashable argument: compute it
            return function(*args)

    return cached
