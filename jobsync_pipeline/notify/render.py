"""A digest as a message: a title and a Markdown body listing each saved search's new jobs.

Only what the store sanitized reaches a message: the description is the sanitized HTML reduced to a
short plain-text excerpt (no markup from a job board travels to a user's inbox or chat).
"""
from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from jobsync_pipeline.core.salary import annual_text

EXCERPT_CHARS = 280
_TAGS = re.compile(r"<[^>]+>")


def digest_message(items: Iterable[Mapping[str, Any]], confirm_token: str | None = None,
                   email: str | None = None) -> tuple[str, str]:
    """(title, Markdown body) of a digest of `items` (claimed notifications with their jobs), grouped by
    saved search; `confirm_token`: the one-time token of a user who has not confirmed their alerts."""
    by_search: dict[int, list[Mapping[str, Any]]] = {}
    for item in items:
        by_search.setdefault(item["saved_search_id"], []).append(item)
    count = sum(len(group) for group in by_search.values())
    title = f"{count} new job{'s' if count != 1 else ''} for your saved search{'es' if len(by_search) != 1 else ''}"
    parts = []
    for search_id, group in by_search.items():
        parts.append(f"## {_search_label(group[0].get('parameters'), search_id)}\n")
        for job in group:
            parts.append(_job_lines(job))
    if confirm_token:
        parts.append("\n---\nYou have not confirmed these alerts yet. Confirm them with "
                     f"`jobsync alerts confirm --token {confirm_token}`"
                     + (f" (or `jobsync alerts confirm --user {email}`)" if email else "")
                     + "; unconfirmed alerts pause after two days.")
    return title, "\n".join(parts).strip() + "\n"


def excerpt(description_html: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The first words of a sanitized description as plain text."""
    text = " ".join(html.unescape(_TAGS.sub(" ", description_html or "")).split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def _search_label(parameters: str | None, search_id: int) -> str:
    try:
        asked = json.loads(parameters or "{}")
    except ValueError:
        asked = {}
    said = [asked.get("keywords")] + list(asked.get("locations") or [])
    said += ["remote"] if asked.get("remote") else []
    said = [s for s in said if s]
    return f"Saved search {search_id}" + (f": {', '.join(said)}" if said else "")


def _job_lines(job: Mapping[str, Any]) -> str:
    where = ", ".join(s for s in (job.get("location"), job.get("workplace")) if s)
    pay = annual_text(job.get("salary_annual_min"), job.get("salary_annual_max"), job.get("salary_currency")) or ""
    url = _link(job.get("url"))
    title = f"**[{_md(job['title'])}]({url})**" if url else f"**{_md(job['title'])}**"
    head = f"- {title} — {_md(job.get('company') or '')}"
    detail = "; ".join(s for s in (where, pay, f"posted {job['posted_date']}" if job.get("posted_date") else "") if s)
    text = excerpt(job.get("description_html"))
    return head + (f"  \n  {_md(detail)}" if detail else "") + (f"  \n  {_md(text)}" if text else "")




def _link(url: str | None) -> str | None:
    """A job's URL as a Markdown link target: http(s) only, with the characters that could end the
    target or open another (parentheses, brackets, spaces, angle brackets) percent-encoded."""
    url = (url or "").strip()
    if not url.lower().startswith(("https://", "http://")):
        return None
    return quote(url, safe=":/?#@!$&'*+,;=%~-._")


def _md(text: str) -> str:
    """Text with Markdown's link and emphasis characters escaped, so a title cannot forge a link."""
    return re.sub(r"([\\`*_\[\]<>])", r"\\\1", text)
