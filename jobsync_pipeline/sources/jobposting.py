"""schema.org `JobPosting` out of an HTML page (JSON-LD or microdata), and a JobPosting as a `Posting`.

Job sites publish their jobs this way for search engines' job listings, so one reader serves every
such site. extruct reads the markup; what it cannot say is added here: which JSON-LD block of a page
is broken (it fails or skips the whole page's JSON-LD for one bad block), the entities a page
nests its postings in (`@graph`, `mainEntity`), a listing page's `ItemList`, and the page's language.
"""
from __future__ import annotations

import hashlib
import html as html_entities
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Annotated, Any
from urllib.parse import urljoin

import lxml.html
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from jobsync_pipeline.core.models import MAX_ID_LENGTH, Posting, PostingDetails
from jobsync_pipeline.core.normalize import clean_text
from jobsync_pipeline.core.salary import stated_bounds
from jobsync_pipeline.core.text import html_to_text

DEFAULT_SOURCE = "site_crawl"  # the one source that reads JobPostings off pages
NO_POSTING = "no JobPosting on the page"
MALFORMED = "malformed JSON-LD"
SALARY_FIELD = "baseSalary"
_SCHEMA_CONTEXT = "http://schema.org"
# What a page nests its entities in besides the top level: a graph, a WebPage's main entity.
_NESTING_KEYS = ("@graph", "mainEntity")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ID_DIGEST_CHARS = 16


@dataclass(frozen=True)
class Extraction:
    """What a page says in schema.org terms: its JobPostings exactly as extracted, the job URLs of its
    `ItemList` (listing pages), its language (ISO 639 code), and why it has no posting."""

    postings: list[dict] = field(default_factory=list)
    item_urls: list[str] = field(default_factory=list)
    language: str | None = None
    problem: str | None = None  # None when the page carries a posting
    malformed: list[str] = field(default_factory=list)  # each unreadable JSON-LD block's JSON error


def page_tree(html: str | bytes) -> lxml.html.HtmlElement:
    """The page's element tree; raises (lxml's errors) on a page with no markup at all."""
    # lxml refuses a str that declares its encoding (<?xml encoding=…?>), and a byte string is decoded
    # here so a page in a legacy charset still reads: always hand it UTF-8 bytes it is told are UTF-8.
    text = html if isinstance(html, str) else decoded_page(html)
    return lxml.html.fromstring(text.encode("utf-8", "surrogatepass"),
                                parser=lxml.html.HTMLParser(encoding="utf-8"))


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def decoded_page(body: bytes) -> str:
    """A fetched page's text: UTF-8 (nearly every job site), else the charset its <meta> names."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _META_CHARSET.search(body[:4096])
    if declared:
        try:
            return body.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return body.decode("utf-8", errors="replace")


def extract_job_postings(html: str | bytes, url: str) -> Extraction:
    """The JobPostings of a page at `url` (relative URLs resolve against it). Never raises: a page it
    cannot read at all says so in `problem`."""
    try:
        tree = page_tree(html)
    except Exception as exc:  # lxml's ParserError for an empty page, and whatever else bad bytes raise
        return Extraction(problem=f"not an HTML page: {_one_line(exc)}")
    return extract_from_tree(tree, url)


def extract_from_tree(tree: lxml.html.HtmlElement, url: str) -> Extraction:
    """`extract_job_postings` for a page already parsed (a listing page's links come from the same tree)."""
    try:
        json_ld, malformed = _json_ld(tree, url)
        entities = list(_entities([*json_ld, *_microdata(tree, url)]))
    except Exception as exc:  # the crawl goes on whatever one page holds; the page says what went wrong
        return Extraction(problem=f"unreadable structured data: {_one_line(exc)}")
    postings = [entity for entity in entities if "JobPosting" in schema_types(entity)]
    language = language_code(tree.getroottree().getroot().get("lang"))
    if language is None and postings:
        language = language_code(postings[0].get("inLanguage"))
    problem = None
    if not postings:
        problem = f"{MALFORMED}: {malformed[0]}" if malformed else NO_POSTING
    return Extraction(postings=postings, item_urls=_item_list_urls(entities, url), language=language,
                      problem=problem, malformed=malformed)


def _json_ld(tree: lxml.html.HtmlElement, url: str) -> tuple[list[dict], list[str]]:
    """Every JSON-LD item of the page, and the JSON error of each block that could not be read.

    A block at a time: extruct reads all of a page's blocks in one go and fails (or, told to, skips)
    them all for one bad block; a page with a good posting and a broken breadcrumb keeps its posting.
    """
    # imported on first use: extruct brings mf2py, rdflib and more (~0.3 s), which loading the
    # definitions, or any other source, need not pay
    from extruct.jsonld import JsonLdExtractor

    reader = JsonLdExtractor()
    items: list[dict] = []
    malformed: list[str] = []
    for block in tree.xpath('//script[@type="application/ld+json"]'):
        text = block.xpath("string()")
        if not text.strip():
            continue
        try:
            # the block itself: extruct's reader also takes blocks whose JSON has HTML or JS comments
            items.extend(item for item in reader.extract_items(block, base_url=url) if isinstance(item, dict))
        except RecursionError:
            malformed.append("nested too deeply")
        except ValueError:
            malformed.append(_json_error(text))
    return items, malformed


def _json_error(text: str) -> str:
    try:
        json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return _one_line(exc)
    return "unreadable JSON"  # json reads it, extruct's comment stripping did not


def _microdata(tree: lxml.html.HtmlElement, url: str) -> list[dict]:
    import extruct

    # uniform: microdata items shaped like JSON-LD ones (@type, nested objects), so one mapping reads both
    found = extruct.extract(tree, base_url=url, syntaxes=["microdata"], uniform=True,
                            schema_context=_SCHEMA_CONTEXT)
    return [item for item in found.get("microdata", []) if isinstance(item, dict)]


def _entities(items: list[dict]):
    """Each item and the entities nested in it the way pages nest postings (a graph, a main entity)."""
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        yield item
        for key in _NESTING_KEYS:
            nested = item.get(key)
            nested = nested if isinstance(nested, list) else [nested]
            stack.extend(entity for entity in reversed(nested) if isinstance(entity, dict))


def schema_types(item: dict) -> set[str]:
    """The item's types without their vocabulary ("JobPosting" for "http://schema.org/JobPosting")."""
    types = item.get("@type")
    types = types if isinstance(types, list) else [types]
    return {re.split(r"[/:#]", t)[-1] for t in types if isinstance(t, str)}


def _item_list_urls(entities: list[dict], page_url: str) -> list[str]:
    urls: dict[str, None] = {}
    for entity in entities:
        if "ItemList" not in schema_types(entity):
            continue
        elements = entity.get("itemListElement")
        for element in elements if isinstance(elements, list) else [elements]:
            link = _element_url(element)
            if link:
                urls[urljoin(page_url, link)] = None
    return list(urls)


def _element_url(element: Any) -> str | None:
    """A ListItem's URL: the element as a URL, its `url`, or its `item` (a URL or an entity with one)."""
    if isinstance(element, str):
        return element.strip() or None
    if not isinstance(element, dict):
        return None
    for candidate in (element.get("url"), element.get("item"), element.get("@id")):
        if isinstance(candidate, dict):
            candidate = candidate.get("url") or candidate.get("@id")
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def language_code(value: Any) -> str | None:
    """An ISO 639-1 code (639-3 when a language has none) from `<html lang>` or `inLanguage`: a tag
    ("vi-VN", "en_US"), a code, a name ("Vietnamese"), or a Language entity."""
    if isinstance(value, list):
        value = next((v for v in value if v), None)
    if isinstance(value, dict):
        value = value.get("alternateName") or value.get("name")
    if not isinstance(value, str) or not value.strip():
        return None
    primary = re.split(r"[-_\s]", value.strip())[0].lower()
    if len(primary) == 2 and primary.isalpha():
        return primary
    import pycountry

    try:
        language = pycountry.languages.lookup(primary if len(primary) == 3 else value.strip())
    except LookupError:
        return primary if len(primary) == 3 and primary.isalpha() else None
    return getattr(language, "alpha_2", None) or language.alpha_3


# --- a JobPosting as a Posting ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    """The first text of a value that may be text, a number, an entity with a name, or a list of them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("@value"))
    if isinstance(value, list):
        return next((text for text in map(_text, value) if text.strip()), "")
    return ""


def _plain(value: Any) -> str:
    # sites entity-escape names in their JSON-LD ("R&amp;D"): unescaped once, as RemoteOK's are
    return clean_text(html_entities.unescape(_text(value)))


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class JobPostingFields(BaseModel):
    """The fields of a JobPosting this source reads; the others are kept in the archive only."""

    model_config = ConfigDict(extra="ignore")

    title: Annotated[str, BeforeValidator(_plain)] = Field(min_length=1)
    hiringOrganization: Any = None
    jobLocation: Any = None
    jobLocationType: Any = None
    applicantLocationRequirements: Any = None
    datePosted: Any = None
    validThrough: Any = None
    baseSalary: Any = None
    employmentType: Any = None
    occupationalCategory: Any = None
    description: Any = None
    identifier: Any = None
    url: Any = None


def job_posting(item: Any, page_url: str, site: str, *, source: str = DEFAULT_SOURCE) -> tuple[Posting, bool]:
    """A JobPosting found on `page_url` of `site` as a posting; raises ValueError or ValidationError for
    one that cannot be (not an object, no title). Still listed even past its `validThrough`: the store
    expires a job by its `valid_through`."""
    if not isinstance(item, dict):
        raise ValueError(f"not a JobPosting object: {type(item).__name__}")
    job = JobPostingFields.model_validate(item)
    url = _posting_url(job.url, page_url)
    remote = any(_text(kind).strip().upper() == "TELECOMMUTE" for kind in _as_list(job.jobLocationType))
    # applicant locations say where a remote job may be done from; on an office job they are not a
    # restriction of remote work, and recorded as one they would make the job remote (core.workplace)
    restrictions = _names(job.applicantLocationRequirements) if remote else []
    low, high, currency, interval, salary_text = _salary(job.baseSalary)
    raw, escaped = _description(job.description)
    tags = _unique([*map(_plain, _as_list(job.employmentType)), *map(_plain, _as_list(job.occupationalCategory))])
    return Posting(
        source=source, board=site, external_id=fitted_id(_identifier(job.identifier) or url), title=job.title,
        company=_plain(job.hiringOrganization), location=_location(job.jobLocation, restrictions, remote), url=url,
        description=html_to_text(raw, escaped=escaped), requirements="[]", posted_date=_posted_date(job.datePosted),
        details=PostingDetails(
            salary_min=low, salary_max=high, salary_currency=currency, salary_interval=interval,
            salary_text=salary_text,
            salary_source=SALARY_FIELD if low or high or salary_text else None,
            workplace_type="remote" if remote else None,
            region_restrictions=json.dumps(restrictions, ensure_ascii=False) if restrictions else None,
            tags=json.dumps(tags, ensure_ascii=False) if tags else None,
            valid_through=utc_timestamp(job.validThrough),
            description_raw=raw, description_format="escaped_html" if escaped else "html")), True


def _posting_url(value: Any, page_url: str) -> str:
    stated = _text(value.get("@id") if isinstance(value, dict) else value).strip()
    return urljoin(page_url, stated) if stated else page_url


def _identifier(value: Any) -> str | None:
    """`identifier` as text: a string, a number, or a PropertyValue's `value` (one of a list)."""
    for candidate in _as_list(value):
        if isinstance(candidate, dict):
            candidate = candidate.get("value", candidate.get("@value"))
        text = clean_text(_text(candidate))
        if text:
            return text
    return None


def fitted_id(external_id: str) -> str:
    """`external_id` within `MAX_ID_LENGTH`: a longer one (a URL with tracking parameters) keeps its
    start and gains a digest of the whole. Cut alone, two long URLs alike at the start would be one job;
    a digest alone would be unreadable. The same id always gives the same form, so it stays stable."""
    if len(external_id) <= MAX_ID_LENGTH:
        return external_id
    digest = hashlib.blake2b(external_id.encode("utf-8", "surrogatepass"),
                             digest_size=_ID_DIGEST_CHARS // 2).hexdigest()
    return f"{external_id[:MAX_ID_LENGTH - _ID_DIGEST_CHARS - 1]}#{digest}"


def _names(value: Any) -> list[str]:
    """The names of places (Country, State, AdministrativeArea entities, or text), once each."""
    return _unique([_plain(place) for place in _as_list(value)])


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))


def _location(value: Any, restrictions: list[str], remote: bool) -> str:
    places = _unique([_place_text(place) for place in _as_list(value)])
    if places:
        return "; ".join(places)
    # like Himalayas: a remote job's location is where it may be done from
    return ", ".join(restrictions) or ("Remote" if remote else "")


def _place_text(place: Any) -> str:
    """A Place as "locality, region, country" from its PostalAddress (or the text it is)."""
    if not isinstance(place, dict):
        return _plain(place)
    address = place.get("address")
    if isinstance(address, list):
        address = next((a for a in address if a), None)
    if not isinstance(address, dict):
        return _plain(address) or _plain(place.get("name"))
    parts = [_plain(address.get(key)) for key in ("addressLocality", "addressRegion", "addressCountry")]
    return ", ".join(_unique(parts)) or _plain(address.get("streetAddress")) or _plain(place.get("name"))


def _posted_date(value: Any) -> str | None:
    """`datePosted` as the date it states (YYYY-MM-DD), the time and its zone dropped."""
    match = _ISO_DATE.match(_text(value).strip())
    if not match:
        return None
    try:
        return date.fromisoformat(match.group()).isoformat()
    except ValueError:
        return None


def utc_timestamp(value: Any) -> str | None:
    """A schema.org Date or DateTime as ISO 8601 in UTC (Himalayas' `valid_through` form); a date alone
    is valid through its whole day, a time without a zone taken as UTC."""
    text = _text(value).strip()
    if not text:
        return None
    try:
        if _ISO_DATE.fullmatch(text):
            when = datetime.combine(date.fromisoformat(text), time(23, 59, 59), tzinfo=timezone.utc)
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat()


def _salary(value: Any) -> tuple[float | None, float | None, str | None, str | None, str | None]:
    """(min, max, currency, interval word, text) of `baseSalary`: a MonetaryAmount whose value is a
    QuantitativeValue (or a number), or a bare number or text."""
    amount = next((a for a in _as_list(value) if a not in (None, "")), None)
    if amount is None:
        return None, None, None, None, None
    currency = unit = None
    if isinstance(amount, dict):
        currency = _text(amount.get("currency")).strip().upper() or None
        unit = amount.get("unitText")
        figure = amount.get("value")
        bounds = amount  # schema.org allows minValue/maxValue on the MonetaryAmount itself
        if isinstance(figure, list):
            figure = next((f for f in figure if f not in (None, "")), None)
        if isinstance(figure, dict):
            unit = figure.get("unitText") or unit
            bounds = figure
            figure = figure.get("value")
        low, high = bounds.get("minValue"), bounds.get("maxValue")
        if low in (None, "") and high in (None, ""):
            low, high, text = _single_figure(figure)
        else:
            low, high, text = stated_bounds(_text(low) or None, _text(high) or None)
    else:
        low, high, text = _single_figure(amount)
    if low is None and high is None and not text:
        return None, None, None, None, None
    interval = _text(unit).strip().lower() or None
    return low, high, currency, interval, text


def _single_figure(value: Any) -> tuple[float | None, float | None, str | None]:
    """One stated amount as both bounds (a number), or as the salary text (anything else)."""
    amount, _, text = stated_bounds(_text(value) or None, None)
    return amount, amount, text


def _description(value: Any) -> tuple[str | None, bool]:
    """The description exactly as stated, and whether its HTML is entity-escaped ("&lt;p&gt;…")."""
    raw = _text(value) or None
    escaped = raw is not None and "<" not in raw and "&lt;" in raw
    return raw, escaped


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
