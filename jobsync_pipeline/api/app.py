"""A small JSON HTTP API over the search-run queue, and the page that uses it (Starlette, ASGI).

Every call carries `Authorization: Bearer <token>` (`jobsync users token EMAIL` issues one) and sees
only its user's rows: the store answers another user's run exactly like one that does not exist, and
on PostgreSQL row-level security holds the same in the database. The API enqueues; the Dagster sensor
launches and executes, as for the CLI. A client follows a run by server-sent events
(`GET /api/runs/{id}/events`: one `status` event per change, then `end`) or by long polling
(`GET /api/runs/{id}?wait=30&status=pending` answers once the status is no longer `pending`).

    GET  /api/me                       the user
    GET  /api/searches                 the user's saved searches
    POST /api/searches/{id}/runs       enqueue a manual run ({"client_context": {...}} optional); 201, or 200
                                       with the run already pending; 429 with Retry-After past the rate limit
    GET  /api/runs?limit=N             the user's runs, newest first
    GET  /api/runs/{id}                a run (?wait=S&status=X: long poll)
    GET  /api/runs/{id}/results?limit=N  its matches, best first
    POST /api/runs/{id}/cancel         cancel it (409 when it has ended)
    GET  /api/runs/{id}/events         its status changes as server-sent events
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from jobsync_pipeline.core.search import parse_client_context
from jobsync_pipeline.store.searches import ENDED, InvalidTransition, NotFound, SearchRun, SearchStore, User
from jobsync_pipeline.store.time import utcnow

RATE_WINDOW = timedelta(minutes=1)
MAX_BODY_BYTES = 8192
# the page's own script and style only; its data is written as text, never as markup
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                           "frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@dataclass(frozen=True)
class ApiSettings:
    runs_per_minute: int = 10  # new manual runs a user may create per minute
    poll_seconds: float = 0.5  # how often a follower (events, long poll) reads its run
    heartbeat_seconds: float = 15.0  # an event stream's keep-alive comment, for proxies that cut idle streams
    max_wait_seconds: float = 60.0  # the longest long poll


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(searches: SearchStore, settings: ApiSettings = ApiSettings(),
               terminate: Callable[[str], None] | None = None) -> Starlette:
    """The API over `searches`; `terminate(search_run_id)` ends the unfinished Dagster runs of a
    cancelled search run (none: a run's own step finds it cancelled and keeps nothing)."""

    async def call(function, *args, **kwargs):
        return await run_in_threadpool(function, *args, **kwargs)

    async def user_of(request: Request) -> User:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = await call(searches.authenticate, token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "a valid bearer token is needed (`jobsync users token EMAIL` issues one)",
                           {"WWW-Authenticate": 'Bearer realm="jobsync"'})
        return user

    async def me(request: Request) -> Response:
        user = await user_of(request)
        return JSONResponse({"email": user.email, "name": user.name, "timezone": user.timezone})

    async def saved_searches(request: Request) -> Response:
        user = await user_of(request)
        return JSONResponse([{"id": s.id, "parameters": s.parameters.model_dump(mode="json", exclude_defaults=True),
                              "created_at": s.created_at.isoformat(timespec="seconds")}
                             for s in await call(searches.list_searches, user.email)])

    async def create_run(request: Request) -> Response:
        user = await user_of(request)
        search_id = _int(request.path_params["search_id"], "saved search id")
        context = parse_client_context(await _client_context(request), name="client_context")
        await call(searches.saved_search, user.email, search_id)  # 404 before the rate limit counts anything
        now = utcnow()
        recent = await call(searches.manual_runs_since, user.email, now - RATE_WINDOW)
        if len(recent) >= settings.runs_per_minute:
            wait = math.ceil((recent[-settings.runs_per_minute] + RATE_WINDOW - now).total_seconds())
            wait = max(1, wait)
            raise ApiError(429, f"at most {settings.runs_per_minute} new search runs a minute; try again in {wait} s",
                           {"Retry-After": str(wait)})
        run, created = await call(searches.enqueue, user.email, search_id, client_context=context)
        return JSONResponse(run.as_json(), status_code=201 if created else 200,
                            headers={"Location": f"/api/runs/{run.id}"})

    async def runs(request: Request) -> Response:
        user = await user_of(request)
        limit = _int(request.query_params.get("limit", "20"), "limit", 1, 200)
        return JSONResponse([r.as_json() for r in await call(searches.history, user.email, limit)])

    async def run(request: Request) -> Response:
        user = await user_of(request)
        run_id = _int(request.path_params["run_id"], "run id")
        found = await call(searches.run, user.email, run_id)
        if "wait" in request.query_params:
            wait = min(_float(request.query_params["wait"], "wait"), settings.max_wait_seconds)
            since = request.query_params.get("status", found.status)
            deadline = time.monotonic() + wait
            while found.status == since and time.monotonic() < deadline and not await request.is_disconnected():
                await asyncio.sleep(settings.poll_seconds)
                found = await call(searches.run, user.email, run_id)
        return JSONResponse(found.as_json())

    async def results(request: Request) -> Response:
        user = await user_of(request)
        run_id = _int(request.path_params["run_id"], "run id")
        limit = _int(request.query_params.get("limit", "20"), "limit", 1, 500)
        return JSONResponse(await call(searches.results, user.email, run_id, limit))

    async def cancel(request: Request) -> Response:
        user = await user_of(request)
        cancelled = await call(searches.cancel, user.email, _int(request.path_params["run_id"], "run id"))
        if terminate is not None:
            await call(terminate, cancelled.id)
        return JSONResponse(cancelled.as_json())

    async def events(request: Request) -> Response:
        user = await user_of(request)
        run_id = _int(request.path_params["run_id"], "run id")
        first = await call(searches.run, user.email, run_id)  # 404 before the stream starts
        return StreamingResponse(_follow(request, first, lambda: call(searches.run, user.email, run_id), settings),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def page(request: Request) -> Response:
        return Response(_asset("page.html"), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def script(request: Request) -> Response:
        return Response(_asset("page.js"), media_type="text/javascript; charset=utf-8", headers=PAGE_HEADERS)

    async def api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=404)

    async def conflict(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=409)

    async def invalid(request: Request, exc: Exception) -> Response:
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()) \
            if isinstance(exc, ValidationError) else str(exc)
        return JSONResponse({"error": message}, status_code=422)

    return Starlette(
        routes=[
            Route("/", page), Route("/page.js", script),
            Route("/api/me", me), Route("/api/searches", saved_searches),
            Route("/api/searches/{search_id}/runs", create_run, methods=["POST"]),
            Route("/api/runs", runs), Route("/api/runs/{run_id}", run),
            Route("/api/runs/{run_id}/results", results),
            Route("/api/runs/{run_id}/cancel", cancel, methods=["POST"]),
            Route("/api/runs/{run_id}/events", events),
        ],
        exception_handlers={ApiError: api_error, NotFound: not_found, InvalidTransition: conflict,
                            ValidationError: invalid, ValueError: invalid},
    )


async def _follow(request: Request, first: SearchRun, read: Callable[[], Any],
                  settings: ApiSettings) -> AsyncIterator[str]:
    """The run's status as server-sent events: the run now, then each change, then `end`."""
    current, sent, quiet_since = first, None, time.monotonic()
    while True:
        state = current.as_json()
        if state != sent:
            yield _event("status", {"run": state, "server_time": utcnow().isoformat(timespec="milliseconds")})
            sent, quiet_since = state, time.monotonic()
        if current.status in ENDED:
            yield _event("end", {"status": current.status})
            return
        if time.monotonic() - quiet_since >= settings.heartbeat_seconds:
            yield ": still following\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(settings.poll_seconds)
        if await request.is_disconnected():
            return
        current = await read()


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _client_context(request: Request) -> str | None:
    body = await request.body()
    if not body.strip():
        return None
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"the request body is {len(body):,} bytes; at most {MAX_BODY_BYTES:,}")
    try:
        document = json.loads(body)
    except ValueError:
        raise ApiError(422, "the request body is not JSON") from None
    if not isinstance(document, dict) or set(document) - {"client_context"}:
        raise ApiError(422, 'the request body is {"client_context": {...}} or nothing')
    context = document.get("client_context")
    return None if context is None else json.dumps(context, ensure_ascii=False)


def _int(text: str, what: str, low: int = 1, high: int = 2**62) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ApiError(422, f"{what} must be a whole number, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise ApiError(422, f"{what} must be between {low} and {high}")
    return value


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(422, f"{what} must be a number of seconds, not {text[:40]!r}") from None
    if not 0 <= value < math.inf:
        raise ApiError(422, f"{what} must be a number of seconds, 0 or more")
    return value


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath(name).read_bytes()
