"""Plain text from the HTML that job boards send (stdlib parser, not regular expressions)."""
from __future__ import annotations

import html
from html.parser import HTMLParser

from jobsync_pipeline.core.normalize import clean_text

_BLOCKS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article",
           "blockquote", "pre", "table", "td", "th"}
_SKIPPED = {"script", "style", "template", "noscript", "iframe"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[list[str]] = [[]]
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIPPED:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.lines.append([])

    def handle_endtag(self, tag):
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.lines.append([])

    def handle_data(self, data):
        if not self.skipping:
            self.lines[-1].append(data)


def html_lines(markup: str | None) -> list[str]:
    """The visible text of `markup`, one entry per block (paragraph, list item, heading)."""
    if not markup:
        return []
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return [line for line in (clean_text("".join(parts)) for parts in collector.lines) if line]


def html_to_text(markup: str | None, *, escaped: bool = False) -> str:
    """Plain text of `markup`, blocks on their own lines. `escaped`: the source entity-escaped its
    HTML (Greenhouse), so it is unescaped once before parsing."""
    return "\n".join(html_lines(html.unescape(markup) if escaped and markup else markup))
