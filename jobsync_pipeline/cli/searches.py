"""`jobsync users …`, `jobsync searches …` and `jobsync search …`: users, their saved searches, and the
search-run queue (store/searches.py), each answer a JSON object with --json.

Every command names its user; another user's saved search or run answers exactly like one that does
not exist. Bad input (an unknown user, no filter at all, a negative salary, an unknown source or time
zone, a client context that is not a small JSON object) is one line and writes nothing.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from jobsync_pipeline.cli.runtime import CommandError, ready_store_url

SEARCH_FILTERS = ("keywords", "locations", "remote", "sources", "categories", "min_salary", "posted_within_days",
                  "live_sites")


def add_commands(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """The three command groups; returns every leaf parser (they all take --json)."""
    users = commands.add_parser("users", help="the people who keep saved searches")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser("add", help="add a user")
    add.add_argument("email")
    add.add_argument("--name")
    add.add_argument("--timezone", default="Europe/London", help="an IANA time zone (default Europe/London)")
    listing = user_commands.add_parser("list", help="every user, with their alert status and digest settings")
    settings = user_commands.add_parser("set", help="a user's digest settings and time zone")
    settings.add_argument("email")
    settings.add_argument("--digest", choices=("asap", "hourly", "daily"), help="how often digests go")
    settings.add_argument("--digest-hour", type=int, metavar="H", help="the local hour (0-23) of a daily digest")
    settings.add_argument("--quiet-hours", metavar="HH:MM-HH:MM",
                          help="local hours when no digest goes (a digest due then waits); '' clears them")
    settings.add_argument("--timezone", help="an IANA time zone")
    token = user_commands.add_parser("token", help="issue an API token for a user (shown once), or revoke theirs")
    token.add_argument("email")
    token.add_argument("--revoke", action="store_true", help="revoke every token of the user instead")

    searches = commands.add_parser("searches", help="a user's saved searches")
    search_commands = searches.add_subparsers(dest="searches_command", required=True)
    new = search_commands.add_parser("add", help="save a search; prints its id")
    new.add_argument("--user", required=True, metavar="EMAIL")
    new.add_argument("--keywords", metavar="TEXT", help="words every match has in its title or description")
    new.add_argument("--location", dest="locations", action="extend", nargs="+", default=[], metavar="TEXT",
                     help="a place or region, any of which a match names (repeatable)")
    new.add_argument("--remote", action="store_true", help="only jobs done remotely")
    new.add_argument("--source", dest="sources", action="extend", nargs="+", default=[], metavar="NAME")
    new.add_argument("--category", dest="categories", action="extend", nargs="+", default=[], metavar="NAME")
    new.add_argument("--min-salary", type=float, metavar="N", help="annual salary at least N")
    new.add_argument("--posted-within-days", type=int, metavar="N")
    new.add_argument("--live-site", dest="live_sites", action="extend", nargs="+", default=[], metavar="NAME",
                     help="a job site to search live as well (through JobSpy)")
    mine = search_commands.add_parser("list", help="a user's saved searches")
    mine.add_argument("--user", required=True, metavar="EMAIL")
    remove = search_commands.add_parser("remove", help="remove a saved search (its past runs stay)")
    remove.add_argument("id", type=int)
    remove.add_argument("--user", required=True, metavar="EMAIL")

    search = commands.add_parser("search", help="search runs: start one, follow it, read its results")
    run_commands = search.add_subparsers(dest="search_command", required=True)
    start = run_commands.add_parser("start", help="enqueue a manual run of a saved search")
    start.add_argument("saved_search_id", type=int)
    start.add_argument("--user", required=True, metavar="EMAIL")
    start.add_argument("--client-context", metavar="JSON", help="a JSON object (at most 4 KB) kept with the run")
    start.add_argument("--wait", action="store_true", help="also run it now, in this process, and print the end")
    status = run_commands.add_parser("status", help="a run's status")
    results = run_commands.add_parser("results", help="a run's matches, best first")
    history = run_commands.add_parser("history", help="a user's runs, newest first")
    rerun = run_commands.add_parser("rerun", help="a new run with the same saved search")
    rerun.add_argument("--wait", action="store_true", help="also run it now, in this process, and print the end")
    cancel = run_commands.add_parser("cancel", help="cancel a pending or running run")
    for sub in (status, results, rerun, cancel):
        sub.add_argument("run_id", type=int)
    for sub in (status, results, history, rerun, cancel):
        sub.add_argument("--user", required=True, metavar="EMAIL")
    for sub in (results, history):
        sub.add_argument("--limit", type=int, default=20)
    return [add, listing, settings, token, new, mine, remove, start, status, results, history, rerun, cancel]


def run(args: argparse.Namespace) -> int:
    from jobsync_pipeline.store.searches import InvalidTransition, NotFound

    try:
        if args.command == "users":
            return _users(args)
        if args.command == "searches":
            return _searches(args)
        return _search(args)
    except NotFound as exc:
        raise CommandError(str(exc)) from exc
    except ValidationError as exc:
        raise CommandError(validation_text(exc)) from exc
    except (ValueError, InvalidTransition) as exc:
        raise CommandError(str(exc)) from exc


def validation_text(exc: ValidationError) -> str:
    """A pydantic error as one line a user reads: "min_salary: must be >= 0; …"."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where.replace('_', '-')}: {message}" if where else message)
    return "; ".join(parts)


def _store():
    from jobsync_pipeline.store.repo import Store

    return Store(ready_store_url()).searches


def _users(args) -> int:
    from jobsync_pipeline.core.search import valid_timezone

    searches = _store()
    if args.users_command == "add":
        user = searches.add_user(args.email, args.name, valid_timezone(args.timezone))
        _print(args, _user_json(user), f"added {user.email} ({user.timezone})")
        return 0
    if args.users_command == "set":
        from jobsync_pipeline.store.repo import Store

        if all(getattr(args, name) is None for name in ("digest", "digest_hour", "quiet_hours", "timezone")):
            raise CommandError("users set needs one of --digest, --digest-hour, --quiet-hours, --timezone")
        user = Store(ready_store_url()).alerts().configure(
            args.email, digest=args.digest, digest_hour=args.digest_hour, quiet_hours=args.quiet_hours,
            timezone=args.timezone)
        _print(args, _user_json(user), f"{user.email}: {_digest_text(user)}")
        return 0
    if args.users_command == "token":
        if args.revoke:
            revoked = searches.revoke_tokens(args.email)
            _print(args, {"email": args.email.lower(), "revoked": revoked}, f"revoked {revoked} token(s) of {args.email}")
        else:
            token = searches.issue_token(args.email)
            _print(args, {"email": args.email.lower(), "token": token},
                   f"{token}\n(shown once: jobsync keeps only its hash; `jobsync users token {args.email} --revoke` "
                   "ends it)")
        return 0
    rows = [_user_json(u) for u in searches.list_users()]
    _print(args, rows, "\n".join(f"{u.email}  {u.name or ''}  {u.timezone}  alerts {u.alert_status}  "
                                 f"{_digest_text(u)}  last seen {u.last_seen_at:%Y-%m-%d %H:%M}"
                                 for u in searches.list_users()) or "no users")
    return 0


def _searches(args) -> int:
    from jobsync_pipeline.core.search import SearchParameters

    searches = _store()
    if args.searches_command == "add":
        given = {name: getattr(args, name) for name in SEARCH_FILTERS}
        # 0 is an answer (refused as absurd below), not an absent option
        parameters = SearchParameters(**{name: value for name, value in given.items()
                                         if value is not None and value != [] and value is not False})
        saved = searches.add_search(args.user, parameters)
        _print(args, _saved_json(saved), f"saved search {saved.id}: {parameters.to_json()}")
        return 0
    if args.searches_command == "list":
        rows = [_saved_json(s) for s in searches.list_searches(args.user)]
        _print(args, rows, "\n".join(f"{r['id']}  {json.dumps(r['parameters'], ensure_ascii=False)}" for r in rows)
               or f"{args.user} has no saved searches")
        return 0
    searches.remove_search(args.user, args.id)
    _print(args, {"id": args.id, "removed": True}, f"removed saved search {args.id}")
    return 0


def _search(args) -> int:
    from jobsync_pipeline.core.search import parse_client_context
    from jobsync_pipeline.store.time import utcnow

    searches = _store()
    command = args.search_command
    if command in ("start", "rerun"):
        if command == "start":
            context = parse_client_context(args.client_context)
            searches.user(args.user, seen=utcnow())
            run, _ = searches.enqueue(args.user, args.saved_search_id, client_context=context)
        else:
            previous = searches.run(args.user, args.run_id)
            run, _ = searches.enqueue(args.user, previous.saved_search_id,
                                      client_context=json.dumps(previous.client_context)
                                      if previous.client_context else None)
        if args.wait:
            run = execute_now(run.id, run.user, run.source)
        _print(args, run.as_json(), _status_line(run))
        return 0 if run.status != "failed" else 1
    if command == "status":
        run = searches.run(args.user, args.run_id)
        _print(args, run.as_json(), _status_line(run))
        return 0
    if command == "results":
        rows = searches.results(args.user, args.run_id, limit=args.limit)
        _print(args, rows, "\n".join(
            f"{r['rank']:>3}. {r['title']} — {r['company']}, {r['location'] or '?'}"
            f"{'  ' + r['salary'] if r['salary'] else ''}  [{'; '.join(r['why'])}]  {r['url']}" for r in rows)
            or "no matches")
        return 0
    if command == "history":
        runs = searches.history(args.user, limit=args.limit)
        _print(args, [r.as_json() for r in runs], "\n".join(map(_status_line, runs))
               or f"{args.user} has no search runs")
        return 0
    run = searches.cancel(args.user, args.run_id)
    terminate(run.id)
    _print(args, run.as_json(), _status_line(run))
    return 0


def execute_now(run_id: int, user: str, source: str):
    """Run the `search_run` job for the run in this process (as `jobsync sync` runs a lane) and return
    the run as it ended."""
    from jobsync_pipeline.cli.runtime import instance
    from jobsync_pipeline.cli.sync import QUIET_LOGS
    from jobsync_pipeline.definitions import defs
    from jobsync_pipeline.defs.searches import run_config, run_tags

    job = defs.resolve_job_def("search_run")
    job.execute_in_process(instance=instance(), run_config={**run_config(run_id), **QUIET_LOGS},
                           tags=run_tags(run_id, user, source), raise_on_error=False)
    return _store().run_by_id(run_id)


def terminate(search_run_id: int) -> int:
    """End every unfinished Dagster run of a cancelled search run: a queued one leaves the queue, a
    started one is terminated (the run coordinator does both). Returns how many."""
    import dagster as dg

    from jobsync_pipeline.cli.runtime import instance
    from jobsync_pipeline.defs.searches import SEARCH_RUN_TAG

    dagster = instance()
    unfinished = dagster.get_runs(filters=dg.RunsFilter(
        tags={SEARCH_RUN_TAG: str(search_run_id)},
        statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                  dg.DagsterRunStatus.STARTED]))
    for run in unfinished:
        dagster.run_coordinator.cancel_run(run.run_id)
    return len(unfinished)


def _print(args, value: Any, text: str) -> None:
    print(json.dumps(value, ensure_ascii=False) if args.json else text)


def _status_line(run) -> str:
    more = "+" if run.jobs_found_capped else ""  # counting stopped at the limit: at least that many
    found = f", {run.jobs_found:,}{more} job(s) found" if run.jobs_found is not None else ""
    error = f": {run.error}" if run.error and run.status in ("failed", "cancelled") else ""
    return f"search run {run.id} ({run.source}, saved search {run.saved_search_id}): {run.status}{found}{error}"


def _user_json(user) -> dict:
    return {"email": user.email, "name": user.name, "timezone": user.timezone,
            "created_at": user.created_at.isoformat(timespec="seconds"),
            "last_seen_at": user.last_seen_at.isoformat(timespec="seconds"), "alert_status": user.alert_status,
            "digest": user.digest, "digest_hour": user.digest_hour, "quiet_hours": user.quiet_hours}


def _digest_text(user) -> str:
    when = {"asap": "digest as soon as matches come", "hourly": "hourly digest",
            "daily": f"daily digest at {user.digest_hour:02d}:00"}[user.digest]
    return when + (f", quiet {user.quiet_hours}" if user.quiet_hours else "")


def _saved_json(saved) -> dict:
    return {"id": saved.id, "parameters": saved.parameters.model_dump(mode="json", exclude_defaults=True),
            "created_at": saved.created_at.isoformat(timespec="seconds")}
