"""`jobsync sites add|set|list|seed`: the job sites the site_crawl lane crawls, their configuration
validated (`sources.site_config.SiteConfig`) and kept in the store. A bad option is one line and
writes nothing."""
from __future__ import annotations

import argparse

from pydantic import ValidationError

from jobsync_pipeline.cli.runtime import CommandError, ready_store_url
from jobsync_pipeline.cli.searches import _print, validation_text

# option name → SiteConfig field, for `add` and `set`
_OPTIONS = ("search_url", "keywords", "max_pages", "request_delay", "max_jobs", "timeout", "browser", "link_selector",
            "language")


def add_commands(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    sites = commands.add_parser("sites", help="job sites crawled for schema.org JobPosting (the site_crawl lane)")
    site_commands = sites.add_subparsers(dest="sites_command", required=True)
    add = site_commands.add_parser("add", help="add a site to crawl (active unless --inactive)")
    add.add_argument("name", help="the site's name: its partition of site_crawl")
    add.add_argument("--search-url", required=True, metavar="TEMPLATE",
                     help="the search results URL with {keyword} and {page}, e.g. https://example.org/jobs/{keyword}?page={page}")
    add.add_argument("--keywords", required=True, metavar="K1,K2,…", help="what to search for, comma-separated")
    change = site_commands.add_parser("set", help="change a site's configuration, or switch it on or off")
    change.add_argument("name")
    change.add_argument("--search-url", metavar="TEMPLATE")
    change.add_argument("--keywords", metavar="K1,K2,…")
    for sub, defaults in ((add, "(default %(default)s)"), (change, "")):
        sub.add_argument("--max-pages", type=int, metavar="N", help=f"result pages per keyword at most {defaults}")
        sub.add_argument("--request-delay", type=float, metavar="S", help=f"seconds between requests to the site {defaults}")
        sub.add_argument("--max-jobs", type=int, metavar="N", help=f"job pages per crawl at most {defaults}")
        sub.add_argument("--timeout", type=float, metavar="S", help=f"seconds a page may take {defaults}")
        sub.add_argument("--browser", action=argparse.BooleanOptionalAction, default=None,
                         help="render pages in the system's headless Chromium (the browser extra)")
        sub.add_argument("--link-selector", metavar="CSS", help="the CSS selector of a results page's job links")
        sub.add_argument("--language", metavar="CODE", help="keep only postings in this language (en, vi, …)")
        state = sub.add_mutually_exclusive_group()
        state.add_argument("--active", dest="active", action="store_true", default=None, help="synced by the schedule")
        state.add_argument("--inactive", dest="active", action="store_false", help="not synced; its jobs stay")
    listing = site_commands.add_parser("list", help="the sites, their configuration and state")
    seed = site_commands.add_parser("seed", help="add the shipped example site (inactive)")
    return [add, change, listing, seed]


def run(args: argparse.Namespace) -> int:
    from jobsync_pipeline.store.repo import Store
    from jobsync_pipeline.store.sites import SiteError

    sites = Store(ready_store_url()).sites
    try:
        if args.sites_command == "list":
            rows = [info.as_json() for info in sites.list()]
            _print(args, rows, "\n".join(_line(r) for r in rows) or "no sites; `jobsync sites add` or `jobsync sites seed`")
            return 0
        if args.sites_command == "seed":
            info = sites.seed()
            _print(args, {"added": info is not None, "site": (info or sites.info("topcv")).as_json()},
                   f"added the example site {info.config.name} (inactive): `jobsync sites set {info.config.name} "
                   "--active` turns it on" if info else "the example site topcv exists already; nothing added")
            return 0
        changes = {field: getattr(args, field) for field in _OPTIONS if getattr(args, field, None) is not None}
        if args.sites_command == "add":
            from jobsync_pipeline.sources.site_config import SiteConfig

            info = sites.add(SiteConfig(name=args.name, **changes), active=args.active is not False)
            verb = "added"
        else:
            info = sites.set(args.name, changes, active=args.active)
            verb = "changed"
        _print(args, info.as_json(), f"{verb} {_line(info.as_json())}")
        return 0
    except ValidationError as exc:
        raise CommandError(validation_text(exc)) from exc
    except SiteError as exc:
        raise CommandError(str(exc)) from exc


def _line(row: dict) -> str:
    state = "active" if row["active"] else row["status"]
    extras = [f"{row['max_pages']} page(s)", f"{row['request_delay']:g} s apart", f"{row['max_jobs']} job(s) at most",
              f"timeout {row['timeout']:g} s"]
    if row["browser"]:
        extras.append("browser")
    if row["link_selector"]:
        extras.append(f"links {row['link_selector']!r}")
    if row["language"]:
        extras.append(f"language {row['language']}")
    synced = row["last_synced_at"][:19] if row["last_synced_at"] else "never synced"
    return (f"{row['name']} ({state}): {row['search_url']} for {', '.join(row['keywords'])}; "
            f"{', '.join(extras)}; {synced}")
