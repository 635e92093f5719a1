"""The one HTTP client of every HTTP source: per-host pacing, bounded polite retries, conditional GETs.

No limiter or retry library: Retry-After (seconds or HTTP-date, capped, shared by every request to the
host) and per-host pacing need custom logic anyway, and what remains is a short loop. The slots
themselves come from a `sources.pacing.Pacer`: this process's own, or one shared through the store.
"""
from __future__ import annotations

import math
import random as _random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.deadline import DeadlineTransport, deadline
from jobsync_pipeline.sources.pacing import InProcessPacer, Pacer
from jobsync_pipeline.core.models import RawPayload

DEFAULT_USER_AGENT = "jobsync/0.1 (+https://github.com/jobsync/jobsync)"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_DEADLINE_SECONDS = 60.0
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Server trouble worth another try; every other status is the server's answer (404 is not an outage).
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class _Overdue(Exception):
    """An attempt that got no complete answer within the policy's deadline (retried like a timeout)."""


# Network trouble worth another try; InvalidURL, UnsupportedProtocol and refused redirects are not.
_RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, _Overdue)


@dataclass(frozen=True)
class HttpPolicy:
    """How politely to ask. Rates are per host ("host" or "host:port" for a non-default port)."""

    requests_per_second: float | None = 1.0  # None: unpaced
    per_host: Mapping[str, float | None] = field(default_factory=dict)
    max_attempts: int = 5
    backoff_base: float = 0.5  # the first retry waits up to this; each further one up to twice as long
    backoff_max: float = 30.0
    # A Retry-After above this fails the request now rather than parking the run for hours.
    retry_after_cap: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # per read: a server dripping bytes never trips it, hence the deadline
    # Seconds one attempt (redirects included) may take from sending to the body's last byte; past it
    # the attempt fails and is retried like a timeout.
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    user_agent: str = DEFAULT_USER_AGENT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        for host, rate in {"(default)": self.requests_per_second, **self.per_host}.items():
            if rate is not None and not rate > 0:
                raise ValueError(f"requests per second for {host} must be > 0 or None, not {rate!r}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, not {self.max_attempts!r}")
        if not self.deadline_seconds > 0:
            raise ValueError(f"deadline_seconds must be > 0, not {self.deadline_seconds!r}")

    def min_interval(self, host: str, port: int | None = None) -> float:
        """Seconds between the starts of two requests to `host` (an override for "host:port" first)."""
        rate = self.per_host.get(host, self.requests_per_second)
        if port is not None:
            rate = self.per_host.get(f"{host}:{port}", rate)
        return 0.0 if rate is None else 1.0 / rate


class FetchError(BoardError):
    """A GET that failed for good; `status` is None when no HTTP answer came (network trouble)."""

    def __init__(self, message: str, *, url: str, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int
    body: bytes  # empty when not_modified
    etag: str | None
    last_modified: str | None
    not_modified: bool
    attempts: int
    fetched_at: datetime


@dataclass
class HttpStats:
    """What the client has cost so far, for run metadata and benchmarks."""

    requests: int = 0  # every request sent, retries included
    retries: int = 0
    throttled: int = 0  # 429s seen
    not_modified: int = 0
    bytes: int = 0  # body bytes received (decoded)
    waited: float = 0.0  # seconds spent waiting for a host's slot, backoff and Retry-After included
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


class PoliteClient:
    """GETs with per-host pacing, bounded retries and validators; thread-safe; close it (or use `with`).

    `pacer` hands out each host's slots: give every client the same shared one (`HttpResource.client()`
    gives `store.pacing.StorePacer`) and the pace holds across clients and processes; without one, the
    client paces its own requests only. `clock` (monotonic seconds), `sleep`, `random` ([0, 1)) and
    `wall_clock` (epoch seconds, for a Retry-After date without a Date header) are injectable for tests;
    a fake `sleep` must advance the fake `clock`.
    """

    def __init__(
        self,
        policy: HttpPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        wall_clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ):
        self.policy = policy or HttpPolicy()
        self.stats = HttpStats()
        self._clock, self._sleep, self._random, self._wall_clock = clock, sleep, random, wall_clock
        self.pacer: Pacer = pacer if pacer is not None else InProcessPacer(clock)
        self._client = httpx.Client(
            transport=transport if transport is not None else DeadlineTransport(),
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            headers={"User-Agent": self.policy.user_agent},
            # Redirects are followed by hand (`_attempt`), and only within the host asked.
            follow_redirects=False,
        )

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        """One resource, or FetchError naming the URL and the problem.

        Given the validators of the last fetch, an unchanged resource comes back `not_modified` with
        an empty body (one cheap request, nothing to write).
        """
        headers = {}
        if etag:
            headers["If-None-Match"] = etag  # as the server sent it, quotes and W/ included
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            request = self._client.build_request("GET", url, params=params, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise FetchError(f"GET {url}: not a usable URL ({exc})", url=url) from exc
        where = str(request.url)
        host = host_key(request.url)
        interval = self.policy.min_interval(request.url.host, request.url.port)
        delay = 0.0
        for attempt in range(1, self.policy.max_attempts + 1):
            self.stats.add(waited=self._wait_for_slot(host, interval, delay), requests=1)
            status: int | None = None
            try:
                fetched = self._attempt(request, where, attempt, etag, last_modified)
                if isinstance(fetched, Fetched):
                    return fetched
                response, problem = fetched
                status = response.status_code
            except _RETRY_ERRORS as exc:
                if isinstance(exc, _Overdue):
                    problem = str(exc)
                else:
                    problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                delay = self._backoff(attempt)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise FetchError(f"GET {where}: not a usable URL ({exc})", url=where) from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"GET {where} failed: {type(exc).__name__}: {exc}", url=where) from exc
            else:
                delay = self._backoff(attempt)
                if status == 429:
                    self.stats.add(throttled=1)
                if status in _RETRY_AFTER_STATUSES:
                    asked = self._retry_after(response)
                    if asked is not None:
                        if asked > self.policy.retry_after_cap:
                            raise FetchError(
                                f"GET {where} answered {problem} asking to retry after {asked:.0f} s, "
                                f"over the {self.policy.retry_after_cap:.0f} s cap",
                                url=where, status=status,
                            )
                        delay = asked
                        # The server spoke for the whole host: hold back every request to it.
                        self.pacer.hold_off(host, asked)
            if attempt == self.policy.max_attempts:
                raise FetchError(f"GET {where} gave up after {attempt} attempts: {problem}", url=where, status=status)
            self.stats.add(retries=1)
        raise AssertionError("unreachable")  # the loop returns or raises

    def wait_turn(self, url: str, delay: float = 0.0) -> float:
        """Wait for the next slot of `url`'s host as a request of this client would (for requests the client
        does not send itself: a browser's navigations); returns the seconds waited."""
        parsed = httpx.URL(url)
        return self._wait_for_slot(host_key(parsed), self.policy.min_interval(parsed.host, parsed.port), delay)

    def rest(self, url: str, seconds: float | None = None) -> None:
        """Hold every request to `url`'s host back for `seconds` from now (default: one interval)."""
        parsed = httpx.URL(url)
        seconds = self.policy.min_interval(parsed.host, parsed.port) if seconds is None else seconds
        if seconds > 0:
            self.pacer.hold_off(host_key(parsed), seconds)

    def _wait_for_slot(self, host: str, interval: float, delay: float) -> float:
        """Reserves the host's next slot (no sooner than `delay` from now), sleeps until it holding nothing,
        and returns the seconds waited. A backoff reserves its slot too: the host rests for everyone."""
        waited = 0.0
        while True:
            slot = self.pacer.reserve(host, interval, delay)
            if slot.wait <= 0:
                return waited
            self._sleep(slot.wait)
            waited += slot.wait
            if not self.pacer.voided(host, slot):
                return waited
            delay = 0.0  # a Retry-After came while we slept: that slot is void, take the next free one

    def _attempt(
        self, request: httpx.Request, where: str, attempt: int, etag: str | None, last_modified: str | None
    ) -> Fetched | tuple[httpx.Response, str]:
        """A Fetched, or (a response worth retrying, its problem); raises FetchError on a final answer.

        Follows up to MAX_REDIRECTS redirects within the scheme, host and port asked, and refuses one that
        leaves them: a board moved to another host is not that host's jobs. The whole attempt, redirects
        included, must end within the policy's deadline (raises _Overdue, retried like a timeout).
        """
        due = self._clock() + self.policy.deadline_seconds
        with deadline(lambda: due - self._clock()):
            origin, hops = _origin(request.url), 0
            while True:
                response = self._send(request, due)
                try:
                    if response.has_redirect_location:
                        request = self._redirect(response, origin, where, hops)
                        hops += 1
                        self.stats.add(requests=1)
                        continue
                    status = response.status_code
                    if status == 304:
                        self.stats.add(not_modified=1)
                        return self._fetched(response, b"", attempt, etag, last_modified)
                    if 200 <= status < 300:
                        return self._fetched(response, self._read_body(response, where, due), attempt, None, None)
                    problem = f"{status} {response.reason_phrase}".strip() + _snippet(response, self._clock, due)
                    if status in _RETRY_STATUSES:
                        return response, problem
                    raise FetchError(f"GET {where} answered {problem}", url=where, status=status)
                except httpx.TimeoutException as exc:
                    self._check_due(due, exc)
                    raise
                finally:
                    response.close()

    def _send(self, request: httpx.Request, due: float) -> httpx.Response:
        """Sends with each timeout (the wait for a pooled connection too) cut to the time left before `due`.

        A server dripping its head byte by byte resets every read timeout; the deadline transport's
        streams cut those reads off at `due` (see `sources.deadline`)."""
        left = self._check_due(due)
        read = min(self.policy.read_timeout, left)
        timeouts = {"connect": min(self.policy.connect_timeout, left), "read": read, "write": read, "pool": read}
        request.extensions = {**request.extensions, "timeout": timeouts}
        try:
            return self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            self._check_due(due, exc)
            raise

    def _check_due(self, due: float, cause: BaseException | None = None) -> float:
        """The seconds left before `due`; raises _Overdue when none are."""
        left = due - self._clock()
        if left <= 0:
            raise _Overdue(f"no complete answer within {self.policy.deadline_seconds:g} s") from cause
        return left

    def _redirect(self, response: httpx.Response, origin: tuple, where: str, hops: int) -> httpx.Request:
        """The request a redirect asks for, or FetchError (not retried) when it leaves the host or loops."""
        target = response.next_request
        status = response.status_code
        if target is None:  # httpx builds it for every redirect it does not follow; never None here
            raise FetchError(f"GET {where} answered {status} without a usable Location", url=where, status=status)
        if _origin(target.url) != origin:
            raise FetchError(
                f"GET {where}: redirected ({status}) from {response.request.url} to {target.url}: refused, "
                f"a redirect may not leave the API host {_origin_text(origin)}",
                url=where, status=status,
            )
        if hops >= MAX_REDIRECTS:
            raise FetchError(f"GET {where}: more than {MAX_REDIRECTS} redirects (last to {target.url})",
                             url=where, status=status)
        return target

    def _read_body(self, response: httpx.Response, where: str, due: float) -> bytes:
        limit = self.policy.max_body_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(
                f"GET {where} declares {int(declared):,} bytes, over the {limit:,}-byte limit",
                url=where, status=response.status_code,
            )
        chunks, size = [], 0
        # Counted after decoding, so a small gzip bomb is refused too.
        for chunk in response.iter_bytes():
            size += len(chunk)
            self.stats.add(bytes=len(chunk))
            if size > limit:
                raise FetchError(
                    f"GET {where} sent over the {limit:,}-byte limit", url=where, status=response.status_code
                )
            chunks.append(chunk)
            self._check_due(due)  # a server dripping its body resets the read timeout with every byte
        return b"".join(chunks)

    def _fetched(
        self, response: httpx.Response, body: bytes, attempt: int, etag: str | None, last_modified: str | None
    ) -> Fetched:
        # A 304 may omit the validators; the ones we sent are still the current ones then.
        return Fetched(
            url=str(response.url),
            status=response.status_code,
            body=body,
            etag=response.headers.get("ETag") or etag,
            last_modified=response.headers.get("Last-Modified") or last_modified,
            not_modified=response.status_code == 304,
            attempts=attempt,
            fetched_at=datetime.now(timezone.utc),
        )

    def _backoff(self, attempt: int) -> float:
        """Full jitter: anywhere up to the exponential ceiling, so many clients do not retry in step."""
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** (attempt - 1))
        return self._random() * ceiling

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds the server asked us to wait, or None when it did not say (or said nonsense)."""
        return retry_after_seconds(response.headers.get("Retry-After"), response.headers.get("Date"),
                                   self._wall_clock)


def retry_after_seconds(value: str | None, server_date: str | None = None,
                        wall_clock: Callable[[], float] = time.time) -> float | None:
    """A Retry-After header's seconds (a number, or an HTTP date measured against the server's own Date
    when it sent one: our clock may be off, its is not), or None when it says nothing usable."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    try:
        now = parsedate_to_datetime(server_date).timestamp()
    except (TypeError, ValueError, IndexError):
        now = wall_clock()
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default one spelled out): what a redirect may not change."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _origin_text(origin: tuple[str, str, int | None]) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}"


def host_key(url: httpx.URL | str) -> str:
    """The host as the client paces it: "host", or "host:port" for an explicit port (two servers on one
    machine, in tests and benchmarks, are two hosts to pace)."""
    url = httpx.URL(url) if isinstance(url, str) else url
    return url.host if url.port is None else f"{url.host}:{url.port}"


def _snippet(response: httpx.Response, clock: Callable[[], float], due: float, limit: int = 200) -> str:
    """The start of an error body, on one line: Greenhouse and Lever say what went wrong there (what
    came before the attempt's deadline)."""
    try:
        head = b""
        for chunk in response.iter_bytes():
            head += chunk
            if len(head) >= limit or clock() >= due:
                break
        text = " ".join(head[:limit].decode("utf-8", "replace").split())
    except httpx.HTTPError:
        return ""
    return f": {text}" if text else ""


def fetched_payload(board: str, fetched: Fetched) -> RawPayload:
    """A one-request board's payload, with the validators for the next conditional GET."""
    return RawPayload(board=board, location=fetched.url, body=fetched.body, fetched_at=fetched.fetched_at,
                      etag=fetched.etag, last_modified=fetched.last_modified, not_modified=fetched.not_modified)
