"""Safe HTML and plain text from the description HTML that job sources send.

Sanitizing is nh3 (the Python binding to Rust's ammonia): it parses with html5ever, the same
HTML5 algorithm browsers use, and rebuilds the document from an allow-list, so obfuscated markup
cannot slip past it the way it slips past regular expressions. The plain text reuses
`core.text.html_to_text` on the sanitized HTML, so it shows what the safe HTML shows.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import nh3

from jobsync_pipeline.core.text import html_to_text

# What job descriptions use; everything else loses its tag but keeps its text.
_TAGS = {
    "p", "br", "div", "span", "ul", "ol", "li", "strong", "b", "em", "i", "u",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "blockquote", "pre", "code",
    "table", "thead", "tbody", "tr", "th", "td", "hr",
}
# Tags dropped together with their contents: code (script, style), embedded documents and
# foreign content, and the raw-text elements whose contents html5ever keeps as text (noscript,
# textarea, xmp...) and which would otherwise come out as escaped markup such as "&lt;script&gt;".
# <form> is deliberately not here: whole-page scrapes can wrap the real text in one (ASP.NET), so
# it loses its tag and action like any other unknown tag but keeps its text.
_DROPPED_WITH_CONTENT = {
    "script", "style", "template", "noscript", "iframe", "frame", "frameset", "noframes",
    "object", "embed", "applet", "svg", "math", "textarea", "xmp", "plaintext", "noembed", "title",
}
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_DROPPED_WITH_CONTENT,
    # "*": empty set clears ammonia's default generic attributes (lang, title) too
    attributes={"a": {"href"}, "*": set()},
    # a URL whose scheme is not one of these loses its href (javascript:, data:, vbscript:...)
    url_schemes={"http", "https", "mailto"},
    # relative URLs would resolve against our own site, where the source's paths mean nothing
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)
_MAX_PASSES = 16


@dataclass(frozen=True, slots=True)
class Description:
    raw: str  # exactly as fetched ('' when none)
    safe_html: str  # sanitized HTML
    text: str  # plain text, blocks on their own lines


def _storable(value: str) -> str:
    """`value` without NUL (PostgreSQL text cannot hold it) and with lone surrogates (JSON can
    carry "\\ud800"; UTF-8 cannot encode it, and nh3 raises on it) replaced by U+FFFD."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 carries surrogates as code units: paired ones decode back to their character,
        # lone ones to one U+FFFD each
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def sanitize_html(markup: str | None) -> str:
    """`markup` reduced to the allow-listed tags and safe links; '' for None or ''.

    Idempotent: one nh3 pass is not always, because misnested markup (an <a> inside an <a>, which
    table foster-parenting or <select> can produce) parses into a tree whose serialization
    re-parses differently, one level of nesting per pass. So it cleans again until the output is
    stable: twice for ordinary input, once for input that is already clean. Every pass is a full
    sanitize, so stopping at the cap (pathologically deep nesting only) is still safe.
    """
    if not markup:
        return ""
    markup = _storable(markup)
    for _ in range(_MAX_PASSES):
        cleaned = _CLEANER.clean(markup)
        if cleaned == markup:
            break
        markup = cleaned
    return cleaned


NBSP = "\u00a0"


def text_as_html(text: str | None) -> str:
    """Plain text as HTML paragraphs, one per line. Every character is escaped, so it is safe as it
    is: no sanitizer pass (a third of the cost of deriving a row) is needed."""
    if not text:
        return ""
    text = _storable(text)
    # escaped as an HTML serializer writes text (a no-break space as &nbsp;), so sanitizing it changes nothing
    return "".join(f"<p>{html.escape(line, quote=False).replace(NBSP, '&nbsp;')}</p>"
                   for line in text.splitlines() if line.strip())


def describe(raw: str | None, *, escaped: bool = False) -> Description:
    """The raw description, its safe HTML and its plain text. `escaped`: the source entity-escapes
    its HTML (Greenhouse), so entities are decoded once before sanitizing."""
    raw = raw or ""
    markup = _storable(raw)
    if escaped:
        markup = html.unescape(markup)
    safe_html = sanitize_html(markup)
    if nh3.is_html(markup):
        text = html_to_text(safe_html)
    else:
        # Plain text (a scraper's description): its line breaks are its blocks, which
        # html_to_text would collapse like any HTML whitespace; each line is still decoded
        # from safe_html so the text shows what the safe HTML shows ("&amp;" is "&").
        text = "\n".join(line for line in map(html_to_text, safe_html.splitlines()) if line)
    return Description(raw=raw, safe_html=safe_html, text=text)
