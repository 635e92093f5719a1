"""Users, their saved searches, and the search-run queue with its results (SQLAlchemy Core).

A search run moves `pending → running → success | failed | cancelled`; `running → pending` again when
the sweeper finds it stuck (its process died) and it has attempts left. Every move is one conditional
UPDATE (`WHERE status IN (...)`), so two processes can never both claim a run, and an illegal move
raises `InvalidTransition` instead of writing. Every call that takes a user answers only that user's
rows: another user's run is `NotFound`, exactly like a run that does not exist. On PostgreSQL the
database holds that too: a user's calls run as the application role with the user named in the
transaction, under row-level security (migration 0010), so even a query that forgot its WHERE would
see no one else's rows.

Executing a search is SQL over the catalog: full text in the database (FTS5 on SQLite, a weighted
tsvector on PostgreSQL; migration 0008), the other filters as WHERE clauses, canonical jobs only
(one row per dedupe key, the preferred source's), not expired. Its order is one an index can give
without reading every match: jobs whose title has every keyword first, then those with the keywords
anywhere, each newest first (the open jobs' `posted_date` index, migration 0011). So a search over a
million jobs reads about as many rows as it keeps, and it counts its matches only up to a limit
(`jobs_found_capped`: at least that many): an exact count of 300,000 matches means reading them all.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from jobsync_pipeline.core.salary import annual_text
from jobsync_pipeline.core.search import SearchParameters, reasons
from jobsync_pipeline.store.tables import (SOURCE_PREFERENCE, api_tokens, jobs, saved_searches, search_run_results,
                                           search_runs, users)
from jobsync_pipeline.store.time import as_utc, utcnow

PENDING, RUNNING, SUCCESS, FAILED, CANCELLED = "pending", "running", "success", "failed", "cancelled"
ENDED = (SUCCESS, FAILED, CANCELLED)
MANUAL, CRON = "manual", "cron"
MAX_ATTEMPTS = 3
MAX_STORED_RESULTS = 500
SEARCH_TIMEOUT_MS = 60_000  # PostgreSQL: the longest a search's statement may take
COUNT_LIMIT = 1000  # matches counted at most; a run at the limit found at least that many
TOKEN_PREFIX = "jsk_"
APP_ROLE = "jobsync_app"  # the role row-level security binds (migration 0010)


class NotFound(LookupError):
    """No such user, saved search or run (or it is another user's: the same answer)."""


class Matches(NamedTuple):
    """What executing a search found: the best matches (each with its score and reasons), how many
    match in all, and whether counting stopped at its limit (then there are at least that many)."""
    results: list[dict[str, Any]]
    jobs_found: int
    capped: bool = False


class InvalidTransition(RuntimeError):
    """A search run asked to move where its state machine does not go (`cancel` of a finished run)."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str | None
    timezone: str
    created_at: datetime
    last_seen_at: datetime
    alert_status: str = "stopped"
    digest: str = "daily"
    digest_hour: int = 8
    quiet_hours: str | None = None


@dataclass(frozen=True)
class SavedSearch:
    id: int
    user_id: int
    parameters: SearchParameters
    created_at: datetime


@dataclass(frozen=True)
class SearchRun:
    id: int
    user: str
    saved_search_id: int
    source: str
    status: str
    parameters: dict[str, Any]
    client_context: dict[str, Any] | None
    jobs_found: int | None
    jobs_found_capped: bool
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    dagster_run_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `jobsync search status --json` object (the contract's keys, in its order)."""
        at = lambda value: value.isoformat(timespec="seconds") if value else None  # noqa: E731
        return {"id": self.id, "user": self.user, "saved_search_id": self.saved_search_id, "source": self.source,
                "status": self.status, "parameters": self.parameters, "client_context": self.client_context,
                "jobs_found": self.jobs_found, "error": self.error, "attempts": self.attempts,
                "created_at": at(self.created_at), "started_at": at(self.started_at),
                "completed_at": at(self.completed_at), "jobs_found_capped": self.jobs_found_capped}


class SearchStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    # --- users ------------------------------------------------------------------------------------
    def add_user(self, email: str, name: str | None, timezone: str, now: datetime | None = None) -> User:
        email = _email(email)
        now = now or utcnow()
        with self.engine.begin() as conn:
            if conn.scalar(sa.select(users.c.id).where(users.c.email == email)) is not None:
                raise ValueError(f"a user {email} already exists")
            conn.execute(users.insert().values(email=email, name=name, timezone=timezone, created_at=now,
                                               last_seen_at=now))
        return self.user(email)

    def user(self, email: str, *, seen: datetime | None = None) -> User:
        """The user by email; `seen`: record that the user was active then (a command, an API call)."""
        email = _email(email)
        with self.engine.begin() as conn:
            if seen is not None:
                conn.execute(users.update().where(users.c.email == email).values(last_seen_at=seen))
            row = conn.execute(sa.select(users).where(users.c.email == email)).first()
        if row is None:
            raise NotFound(f"no user {email}; `jobsync users add {email}` adds one")
        return _user(row)

    def issue_token(self, email: str, now: datetime | None = None) -> str:
        """A new API token for the user, shown this once; only its hash is kept."""
        user = self.user(email)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(api_tokens.insert().values(user_id=user.id, token_hash=token_hash(token),
                                                    created_at=now or utcnow()))
        return token

    def revoke_tokens(self, email: str, now: datetime | None = None) -> int:
        """Revoke every live token of the user; returns how many."""
        user = self.user(email)
        with self.engine.begin() as conn:
            return conn.execute(api_tokens.update().where(api_tokens.c.user_id == user.id,
                                                          api_tokens.c.revoked_at.is_(None))
                                .values(revoked_at=now or utcnow())).rowcount

    def authenticate(self, token: str, now: datetime | None = None) -> User | None:
        """The user a live token belongs to (recording the use), or None for any other string."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        now = now or utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_tokens.c.id, users).join(users, users.c.id == api_tokens.c.user_id)
                               .where(api_tokens.c.token_hash == token_hash(token),
                                      api_tokens.c.revoked_at.is_(None))).first()
            if row is None:
                return None
            conn.execute(api_tokens.update().where(api_tokens.c.id == row[0]).values(last_used_at=now))
            conn.execute(users.update().where(users.c.id == row.id).values(last_seen_at=now))
        return self.user(row.email)

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.email))]

    # --- saved searches ---------------------------------------------------------------------------
    def add_search(self, email: str, parameters: SearchParameters, now: datetime | None = None) -> SavedSearch:
        user = self.user(email, seen=now or utcnow())
        with self._as(user.id) as conn:
            new_id = conn.execute(saved_searches.insert().values(
                user_id=user.id, parameters=parameters.to_json(), created_at=now or utcnow())).inserted_primary_key[0]
        return self.saved_search(email, new_id)

    def saved_search(self, email: str, search_id: int) -> SavedSearch:
        user = self.user(email)
        with self._as(user.id) as conn:
            row = conn.execute(sa.select(saved_searches).where(
                saved_searches.c.id == search_id, saved_searches.c.user_id == user.id,
                saved_searches.c.removed_at.is_(None))).first()
        if row is None:
            raise NotFound(f"{email} has no saved search {search_id}")
        return _saved(row)

    def list_searches(self, email: str) -> list[SavedSearch]:
        user = self.user(email)
        with self._as(user.id) as conn:
            return [_saved(r) for r in conn.execute(sa.select(saved_searches).where(
                saved_searches.c.user_id == user.id, saved_searches.c.removed_at.is_(None)).order_by(saved_searches.c.id))]

    def remove_search(self, email: str, search_id: int, now: datetime | None = None) -> None:
        """Remove a saved search: no new runs, its pending runs cancelled; its past runs stay readable."""
        search = self.saved_search(email, search_id)
        now = now or utcnow()
        with self._as(search.user_id) as conn:
            conn.execute(saved_searches.update().where(saved_searches.c.id == search_id).values(removed_at=now))
            conn.execute(search_runs.update().where(search_runs.c.saved_search_id == search_id,
                                                    search_runs.c.status == PENDING).values(
                status=CANCELLED, completed_at=now, error="its saved search was removed"))

    # --- the queue --------------------------------------------------------------------------------
    def enqueue(self, email: str, search_id: int, source: str = MANUAL, client_context: str | None = None,
                now: datetime | None = None) -> tuple[SearchRun, bool]:
        """A pending run of the saved search, and whether it is new: a saved search with a pending run
        already gets that run back (no pile-up; the partial unique index makes it so under races)."""
        now = now or utcnow()
        search = self.saved_search(email, search_id)
        with self._as(search.user_id) as conn:
            existing = conn.scalar(sa.select(search_runs.c.id).where(
                search_runs.c.saved_search_id == search_id, search_runs.c.status == PENDING))
            if existing is None:
                try:
                    with conn.begin_nested():
                        existing = conn.execute(search_runs.insert().values(
                            user_id=search.user_id, saved_search_id=search_id, source=source, status=PENDING,
                            parameters=search.parameters.to_json(), client_context=client_context,
                            created_at=now)).inserted_primary_key[0]
                    created = True
                except sa.exc.IntegrityError:  # another process enqueued it just now: that one is the run
                    existing = conn.scalar(sa.select(search_runs.c.id).where(
                        search_runs.c.saved_search_id == search_id, search_runs.c.status == PENDING))
                    created = False
            else:
                created = False
        return self.run(email, existing), created

    def enqueue_cron(self, active_since: datetime, now: datetime | None = None) -> list[int]:
        """One cron run per saved search of every user seen since `active_since`, except saved searches
        that have a pending or running run already; returns the new runs' ids."""
        now = now or utcnow()
        busy = sa.select(search_runs.c.saved_search_id).where(search_runs.c.status.in_((PENDING, RUNNING)))
        query = (sa.select(saved_searches.c.id, saved_searches.c.user_id, saved_searches.c.parameters)
                 .join(users, users.c.id == saved_searches.c.user_id)
                 .where(saved_searches.c.removed_at.is_(None), users.c.last_seen_at >= active_since,
                        saved_searches.c.id.not_in(busy)).order_by(saved_searches.c.id))
        created = []
        with self.engine.begin() as conn:
            for search_id, user_id, parameters in conn.execute(query).all():
                try:
                    with conn.begin_nested():
                        created.append(conn.execute(search_runs.insert().values(
                            user_id=user_id, saved_search_id=search_id, source=CRON, status=PENDING,
                            parameters=parameters, created_at=now)).inserted_primary_key[0])
                except sa.exc.IntegrityError:
                    continue  # enqueued by hand meanwhile
        return created

    def run(self, email: str, run_id: int) -> SearchRun:
        """A run of the user's; another user's run is NotFound, like one that does not exist."""
        user = self.user(email)
        with self._as(user.id) as conn:
            row = conn.execute(_runs_query().where(search_runs.c.id == run_id, search_runs.c.user_id == user.id)).first()
        if row is None:
            raise NotFound(f"{email} has no search run {run_id}")
        return _run(row)

    def run_by_id(self, run_id: int) -> SearchRun:
        """A run whoever owns it: for the executor and the sensors, never for a user."""
        with self.engine.connect() as conn:
            row = conn.execute(_runs_query().where(search_runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no search run {run_id}")
        return _run(row)

    def history(self, email: str, limit: int = 20) -> list[SearchRun]:
        user = self.user(email)
        with self._as(user.id) as conn:
            return [_run(r) for r in conn.execute(_runs_query().where(search_runs.c.user_id == user.id)
                                                  .order_by(search_runs.c.id.desc()).limit(limit))]

    def pending(self, limit: int = 100, after: dict[str, int] | None = None,
                waiting_since: datetime | None = None) -> list[SearchRun]:
        """Pending runs, manual before cron, oldest first (what the sensor launches). With `after` (the
        highest id already launched, per source): only runs past it, runs on a second attempt, and runs
        pending since before `waiting_since` (launched, perhaps, but never started): so a backlog of
        launched runs waiting in Dagster's queue never hides the runs behind it."""
        query = _runs_query().where(search_runs.c.status == PENDING)
        if after is not None:
            unseen = sa.and_(sa.true(), *(sa.or_(search_runs.c.source != source, search_runs.c.id > last)
                                          for source, last in after.items()))
            again = [search_runs.c.attempts > 0]
            if waiting_since is not None:
                again.append(search_runs.c.created_at < waiting_since)
            query = query.where(sa.or_(unseen, *again)).order_by(sa.case((unseen, 0), else_=1))
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(query.order_by(
                sa.case((search_runs.c.source == MANUAL, 0), else_=1), search_runs.c.id).limit(limit))]

    def start(self, run_id: int, dagster_run_id: str | None = None, now: datetime | None = None) -> SearchRun:
        """pending → running (one more attempt); InvalidTransition unless it was pending."""
        self._move(run_id, (PENDING,), status=RUNNING, started_at=now or utcnow(), completed_at=None, error=None,
                   attempts=search_runs.c.attempts + 1,
                   **({"dagster_run_id": dagster_run_id} if dagster_run_id else {}))
        return self.run_by_id(run_id)

    def succeed(self, run_id: int, results: list[dict[str, Any]], jobs_found: int, capped: bool = False,
                now: datetime | None = None) -> None:
        """running → success with its ranked results (`Matches`, spread), in one transaction; a run
        cancelled meanwhile stays cancelled and keeps no results (InvalidTransition)."""
        now = now or utcnow()
        with self.engine.begin() as conn:
            moved = conn.execute(search_runs.update().where(search_runs.c.id == run_id, search_runs.c.status == RUNNING)
                                 .values(status=SUCCESS, jobs_found=jobs_found, jobs_found_capped=capped,
                                         completed_at=now, error=None)).rowcount
            if not moved:
                raise InvalidTransition(self._refusal(conn, run_id, SUCCESS))
            conn.execute(search_run_results.delete().where(search_run_results.c.search_run_id == run_id))
            if results:
                conn.execute(search_run_results.insert(), [
                    {"search_run_id": run_id, "rank": rank, "job_id": r["job_id"], "score": r["score"],
                     "reasons": json.dumps(r["reasons"], ensure_ascii=False)} for rank, r in enumerate(results, 1)])

    def fail(self, run_id: int, error: str, now: datetime | None = None) -> None:
        """pending or running → failed, with its error."""
        self._move(run_id, (PENDING, RUNNING), status=FAILED, error=error[:2000], completed_at=now or utcnow())

    def cancel(self, email: str, run_id: int, now: datetime | None = None) -> SearchRun:
        """pending or running → cancelled (a pending run is then never launched); InvalidTransition for a
        finished run."""
        user = self.user(email)
        self.run(email, run_id)  # another user's run: NotFound, like one that does not exist
        self._move(run_id, (PENDING, RUNNING), owner=user.id, status=CANCELLED, completed_at=now or utcnow(),
                   error="cancelled by its user")
        return self.run(email, run_id)

    def cancel_by_id(self, run_id: int, reason: str, now: datetime | None = None) -> None:
        """pending or running → cancelled for a reason of the system's (its Dagster run was terminated
        in Dagster); InvalidTransition when it has ended already."""
        self._move(run_id, (PENDING, RUNNING), status=CANCELLED, completed_at=now or utcnow(), error=reason[:2000])

    def manual_runs_since(self, email: str, since: datetime) -> list[datetime]:
        """When the user's manual runs since `since` were created, oldest first (the API's rate limit)."""
        user = self.user(email)
        with self._as(user.id) as conn:
            return [as_utc(at) for at in conn.scalars(sa.select(search_runs.c.created_at).where(
                search_runs.c.user_id == user.id, search_runs.c.source == MANUAL,
                search_runs.c.created_at >= since).order_by(search_runs.c.created_at))]

    def sweep(self, stuck_after: timedelta, now: datetime | None = None,
              max_attempts: int = MAX_ATTEMPTS) -> dict[str, list[int]]:
        """Runs `running` for longer than `stuck_after` (their process died): back to pending while they
        have attempts left, failed after `max_attempts`. Returns the ids by outcome."""
        now = now or utcnow()
        cutoff = now - stuck_after
        with self.engine.begin() as conn:
            stuck = conn.execute(sa.select(search_runs.c.id, search_runs.c.attempts).where(
                search_runs.c.status == RUNNING, search_runs.c.started_at < cutoff)).all()
            retried = [run_id for run_id, attempts in stuck if attempts < max_attempts]
            failed = [run_id for run_id, attempts in stuck if attempts >= max_attempts]
            for run_id in retried:
                try:
                    with conn.begin_nested():
                        conn.execute(search_runs.update().where(search_runs.c.id == run_id,
                                                                search_runs.c.status == RUNNING).values(
                            status=PENDING, started_at=None, dagster_run_id=None,
                            error=f"stuck in running for over {stuck_after}; retried"))
                except sa.exc.IntegrityError:  # a manual run of the same search is pending: that one will do
                    failed.append(run_id)
            if failed:
                conn.execute(search_runs.update().where(search_runs.c.id.in_(failed), search_runs.c.status == RUNNING)
                             .values(status=FAILED, completed_at=now,
                                     error=f"stuck in running for over {stuck_after}, {max_attempts} attempts"))
        return {"retried": retried, "failed": failed}

    def results(self, email: str, run_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """The run's matches, best first, with the job as the catalog has it now."""
        user_id = self.user(email).id
        self.run(email, run_id)
        query = (sa.select(search_run_results.c.rank, search_run_results.c.score, search_run_results.c.reasons,
                           jobs.c.id, jobs.c.title, jobs.c.company, jobs.c.location, jobs.c.workplace,
                           jobs.c.salary_annual_min, jobs.c.salary_annual_max, jobs.c.salary_currency, jobs.c.url,
                           jobs.c.posted_date, jobs.c.source)
                 .join(jobs, jobs.c.id == search_run_results.c.job_id)
                 .where(search_run_results.c.search_run_id == run_id)
                 .order_by(search_run_results.c.rank).limit(limit))
        with self._as(user_id) as conn:
            return [{"rank": r.rank, "job_id": r.id, "title": r.title, "company": r.company, "location": r.location,
                     "workplace": r.workplace, "salary": _salary(r), "url": r.url, "posted_date": r.posted_date,
                     "source": r.source, "score": float(f"{r.score:.4g}"), "why": json.loads(r.reasons)}
                    for r in conn.execute(query)]

    # --- executing a search ------------------------------------------------------------------------
    def execute(self, parameters: SearchParameters, now: datetime | None = None,
                limit: int = MAX_STORED_RESULTS, count_limit: int = COUNT_LIMIT) -> Matches:
        """The canonical, open jobs matching `parameters`, best first (at most `limit`, each with its
        score and reasons), and how many match, counted up to `count_limit`."""
        now = now or utcnow()
        count_limit = max(count_limit, limit)
        tiers = _search_tiers(self.engine.dialect.name, parameters, now)
        rows: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # the planner prices the per-row canonical test high enough to JIT-compile the query,
                # which costs more (tens of ms) than running it
                conn.execute(sa.text("SET LOCAL jit = off"))
                # a search waiting on a lock (a migration, a VACUUM FULL) ends, and so does a cancel
                # that has to wait for the statement to return
                conn.execute(sa.text(f"SET LOCAL statement_timeout = {SEARCH_TIMEOUT_MS}"))
            for score, query in tiers:
                if len(rows) >= limit:
                    break
                found = conn.execute(query.add_columns(sa.literal(score).label("score"))
                                     .order_by(*NEWEST_FIRST).limit(limit - len(rows))).mappings().all()
                rows.extend(found)
            total = len(rows)
            if total >= limit:  # there may be more than it kept: count them, up to the limit
                counted = sa.union_all(*(tier.with_only_columns(jobs.c.id) for _, tier in tiers)).subquery()
                total = conn.scalar(sa.select(sa.func.count()).select_from(
                    sa.select(counted.c.id).limit(count_limit + 1).subquery()))
        capped = total > count_limit
        return Matches([{"job_id": row["id"], "score": float(row["score"]), "reasons": reasons(parameters, row)}
                        for row in rows], min(total, count_limit), capped)

    @contextmanager
    def _as(self, user_id: int) -> Iterator[sa.Connection]:
        """A transaction for one user's rows: on PostgreSQL as the application role with the user named,
        so row-level security admits that user's rows only (migration 0010)."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET LOCAL ROLE {APP_ROLE}"))
                conn.execute(sa.select(sa.func.set_config("jobsync.user_id", str(user_id), True)))
            yield conn

    def _move(self, run_id: int, sources: tuple[str, ...], owner: int | None = None, **values) -> None:
        """One conditional UPDATE from `sources`; `owner`: a user's own move, made as that user (row-level
        security) and of their run only."""
        where = [search_runs.c.id == run_id, search_runs.c.status.in_(sources)]
        if owner is not None:
            where.append(search_runs.c.user_id == owner)
        with self.engine.begin() if owner is None else self._as(owner) as conn:
            if not conn.execute(search_runs.update().where(*where).values(**values)).rowcount:
                raise InvalidTransition(self._refusal(conn, run_id, values["status"]))

    @staticmethod
    def _refusal(conn: sa.Connection, run_id: int, target: str) -> str:
        status = conn.scalar(sa.select(search_runs.c.status).where(search_runs.c.id == run_id))
        if status is None:
            return f"no search run {run_id}"
        return f"search run {run_id} is {status}: it cannot become {target}"


# the order every tier is read in: an index on the open jobs gives it (migration 0011)
NEWEST_FIRST = (jobs.c.posted_date.desc().nulls_last(), jobs.c.id.desc())
TITLE_SCORE, TEXT_SCORE, FILTER_SCORE = 2.0, 1.0, 0.0
# what `reasons` reads of a match: the wide text columns stay in the table
REASON_COLUMNS = ("id", "title", "location", "workplace_regions", "source", "category", "salary_annual_min",
                  "salary_annual_max", "posted_date")


def _search_tiers(dialect: str, p: SearchParameters, now: datetime) -> list[tuple[float, sa.Select]]:
    """The SELECTs of matching canonical open jobs, best tier first, each with its score: with
    keywords, the jobs whose title has every word, then the others that have every word somewhere;
    without, one tier of every job the filters admit. The tiers never share a job."""
    filters = [jobs.c.expired_at.is_(None), _is_canonical(), *_filters(dialect, p, now)]
    query = sa.select(*(jobs.c[name] for name in REASON_COLUMNS)).select_from(jobs)
    words = p.words()
    if not words:
        return [(FILTER_SCORE, query.where(*filters))]
    if dialect == "postgresql":
        query_text = " & ".join(_pg_word(w) for w in words)
        matches = lambda column: sa.literal_column(f"jobs.{column}").op("@@")(  # noqa: E731
            sa.func.to_tsquery("simple", query_text))
        # title_vector (migration 0011): the words' own statistics for titles, so a word no title
        # has is an empty index lookup rather than a walk of every job
        return [(TITLE_SCORE, query.where(matches("title_vector"), *filters)),
                (TEXT_SCORE, query.where(matches("search_vector"), ~matches("title_vector"), *filters))]
    # every token of every word (the index keeps no positions: "node.js" is node AND js)
    tokens = " ".join(f'"{token}"' for w in words for token in _tokens(w))
    in_title = f"title : ({tokens})"

    def fts(match: str, name: str) -> sa.Select:
        hits = sa.text(f"SELECT rowid AS id FROM jobs_fts WHERE jobs_fts MATCH :{name}").bindparams(
            **{name: match}).columns(id=sa.BigInteger).subquery(name)
        return query.where(jobs.c.id.in_(sa.select(hits.c.id)), *filters)

    return [(TITLE_SCORE, fts(in_title, "title_match")), (TEXT_SCORE, fts(f"({tokens}) NOT {in_title}", "text_match"))]


def _facet_filter(p: SearchParameters) -> list[sa.ColumnElement[bool]]:
    """PostgreSQL: the location, remote, source and category filters as one query of the `facets`
    tsvector (migration 0012; weight A category, B workplace, C location and regions, D source), so
    its GIN index can find the jobs they admit together and the planner knows how many (the same
    filters as separate WHERE clauses again would have it multiply their selectivities twice). A
    location is matched as words ("US" is the word, not the letters in "Austin")."""
    parts = []
    if p.categories:
        parts.append(_any_of([[(c, "A")] for c in p.categories]))
    if p.remote:
        parts.append(_any_of([[("remote", "B")]]))
    if p.sources:
        parts.append(_any_of([[(w, "D") for w in _tokens(source)] for source in p.sources]))
    if p.locations:
        either = []
        for asked, region in p.regions().items():
            either.append([(w, "C") for w in _tokens(asked)])
            if region:
                either.append([(w, "C") for w in _tokens(region)])
        parts.append(_any_of(either))
    if not parts:
        return []
    if any(part is None for part in parts):
        return [sa.false()]  # a location with no word in it names no place
    return [sa.literal_column("jobs.facets").op("@@")(sa.func.to_tsquery("simple", " & ".join(parts)))]


def _any_of(alternatives: list[list[tuple[str, str]]]) -> str | None:
    """A tsquery that holds when any alternative has all its (word, weight) pairs."""
    alternatives = [a for a in alternatives if a]
    if not alternatives:
        return None
    return "(" + " | ".join("(" + " & ".join(f"{_pg_word(w)}:{weight}" for w, weight in a) + ")"
                            for a in alternatives) + ")"


def _tokens(text: str) -> list[str]:
    """The words PostgreSQL's parser makes of `text` (letters and digits, lower case)."""
    return re.findall(r"[^\W_]+", text.casefold())


def _filters(dialect: str, p: SearchParameters, now: datetime) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of every filter but the keywords."""
    if dialect == "postgresql":
        conditions = _facet_filter(p)
    else:
        conditions = _exact_facets(p)
    if p.min_salary is not None:
        conditions.append(sa.func.coalesce(jobs.c.salary_annual_max, jobs.c.salary_annual_min) >= p.min_salary)
    if p.posted_within_days:
        since = now - timedelta(days=p.posted_within_days)
        conditions.append(sa.or_(jobs.c.posted_date >= since.date().isoformat(),
                                 sa.and_(jobs.c.posted_date.is_(None), jobs.c.first_seen_at >= since)))
    return conditions


def _exact_facets(p: SearchParameters) -> list[sa.ColumnElement[bool]]:
    """SQLite: the location, remote, source and category filters as WHERE clauses on the columns."""
    conditions = []
    if p.locations:
        either = []
        for asked, region in p.regions().items():
            either.append(jobs.c.location.icontains(asked, autoescape=True))
            if region:
                either.append(jobs.c.workplace_regions.contains(json.dumps(region, ensure_ascii=False), autoescape=True))
        conditions.append(sa.or_(*either))
    if p.remote:
        conditions.append(jobs.c.workplace == "remote")
    if p.sources:
        conditions.append(jobs.c.source.in_(p.sources))
    if p.categories:
        conditions.append(jobs.c.category.in_(p.categories))
    return conditions


def _is_canonical() -> sa.ColumnElement[bool]:
    """The row is its dedupe key's preferred listing: no open row of a preferred source (or an earlier
    one of the same source) shares the key."""
    other = jobs.alias("other")
    mine, theirs = _preference(jobs), _preference(other)
    better = sa.select(other.c.id).where(
        other.c.dedupe_key == jobs.c.dedupe_key, other.c.expired_at.is_(None), other.c.id != jobs.c.id,
        sa.or_(theirs < mine, sa.and_(theirs == mine, other.c.id < jobs.c.id)))
    return sa.or_(jobs.c.dedupe_key.is_(None), ~sa.exists(better))


def _preference(table: sa.FromClause) -> sa.ColumnElement[int]:
    """A row's rank among the sources of one canonical job (SOURCE_PREFERENCE: an ATS first)."""
    return sa.case({source: rank for rank, source in enumerate(SOURCE_PREFERENCE)}, value=table.c.source,
                   else_=len(SOURCE_PREFERENCE))


def _pg_word(word: str) -> str:
    """A word as a to_tsquery operand: quoted, so "c++" or "node.js" are words, not operators."""
    return "'" + word.replace("'", "''").replace("\\", "\\\\") + "'"


def _runs_query() -> sa.Select:
    return sa.select(search_runs, users.c.email).join(users, users.c.id == search_runs.c.user_id)


def token_hash(token: str) -> str:
    """What the store keeps of a token (API or confirmation): 32 random bytes need no slow hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def _email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email or len(email) > 320:
        raise ValueError(f"{email!r} is not an email address")
    return email


def _user(row) -> User:
    return User(id=row.id, email=row.email, name=row.name, timezone=row.timezone, created_at=as_utc(row.created_at),
                last_seen_at=as_utc(row.last_seen_at), alert_status=row.alert_status, digest=row.digest,
                digest_hour=row.digest_hour, quiet_hours=row.quiet_hours)


def _saved(row) -> SavedSearch:
    return SavedSearch(id=row.id, user_id=row.user_id, parameters=SearchParameters.model_validate_json(row.parameters),
                       created_at=as_utc(row.created_at))


def _run(row) -> SearchRun:
    return SearchRun(id=row.id, user=row.email, saved_search_id=row.saved_search_id, source=row.source,
                     status=row.status, parameters=json.loads(row.parameters),
                     client_context=json.loads(row.client_context) if row.client_context else None,
                     jobs_found=row.jobs_found, jobs_found_capped=bool(row.jobs_found_capped), error=row.error,
                     attempts=row.attempts,
                     created_at=as_utc(row.created_at), started_at=as_utc(row.started_at),
                     completed_at=as_utc(row.completed_at), dagster_run_id=row.dagster_run_id)


def _salary(row) -> str | None:
    return annual_text(row.salary_annual_min, row.salary_annual_max, row.salary_currency)
