"""Pages rendered in the system's headless Chromium through Playwright, for sites that build their jobs
with JavaScript.

Playwright is an optional extra and the browser is the operating system's (`apt-get install
chromium`): nothing here downloads a browser. Pacing and robots.txt are the crawler's business; this
module only opens pages.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BROWSER_PATH = "/usr/bin/chromium"
INSTALL_HINT = "pip install 'jobsync-pipeline[browser]'"
# What a job page needs rendered is its markup and scripts; pictures, video and fonts would only
# multiply the requests a crawl sends to the site.
_SKIPPED_RESOURCES = frozenset({"image", "media", "font"})


class BrowserUnavailable(Exception):
    """No browser to render with: Playwright missing, no Chromium binary, or Chromium would not start."""


class PageFailed(Exception):
    """A page the browser could not open (a timeout, a refused connection, an aborted navigation)."""


@dataclass(frozen=True)
class RenderedPage:
    url: str  # after redirects
    status: int | None  # None: the navigation produced no HTTP response (a data: URL)
    html: str
    headers: dict[str, str] = field(default_factory=dict)  # response headers, names lower-cased


class BrowserPages:
    """One headless Chromium and one tab, navigated page after page; close it."""

    def __init__(self, browser_path: str = DEFAULT_BROWSER_PATH, *, user_agent: str | None = None):
        if not (os.path.isfile(browser_path) and os.access(browser_path, os.X_OK)):
            raise BrowserUnavailable(f"no Chromium at {browser_path}: apt-get install chromium "
                                     f"(and {INSTALL_HINT})")
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            raise BrowserUnavailable(f"Playwright is not installed: {INSTALL_HINT} "
                                     f"(it drives the system's Chromium: apt-get install chromium)") from None
        self._error = Error
        self._playwright: Any = None
        self._browser: Any = None
        try:
            # inside a running asyncio loop the sync API refuses to start: that is an Error too
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=browser_path, headless=True)
            context = self._browser.new_context(user_agent=user_agent) if user_agent else self._browser.new_context()
            context.route("**/*", _skip_heavy_resources)
            self._page = context.new_page()
        except Error as exc:
            self.close()
            raise BrowserUnavailable(f"Chromium at {browser_path} did not start: {_first_line(exc)}") from None

    def render(self, url: str, timeout: float) -> RenderedPage:
        """The page at `url` once loaded; raises PageFailed when it cannot be opened within `timeout` s."""
        try:
            response = self._page.goto(url, timeout=timeout * 1000, wait_until="load")
            html = self._page.content()
        except self._error as exc:
            raise PageFailed(f"GET {url} in the browser failed: {_first_line(exc)}") from None
        if response is None:
            return RenderedPage(url=self._page.url, status=None, html=html)
        return RenderedPage(url=self._page.url, status=response.status, html=html,
                            headers={name.lower(): value for name, value in response.headers.items()})

    def close(self) -> None:
        browser, playwright, self._browser, self._playwright = self._browser, self._playwright, None, None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()

    def __enter__(self) -> BrowserPages:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _skip_heavy_resources(route: Any) -> None:
    if route.request.resource_type in _SKIPPED_RESOURCES:
        route.abort()
    else:
        route.continue_()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
