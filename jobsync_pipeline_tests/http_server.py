"""A local HTTP server for tests and benchmarks: canned answers, ETags, slowness and its own rate limit."""
from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None  # sent as ETag; a matching If-None-Match gets 304
    last_modified: str | None = None  # sent as Last-Modified; an If-Modified-Since not older gets 304
    delay: float = 0.0  # seconds before answering: a slow server
    drip: float = 0.0  # seconds between the body's bytes, sent one at a time: a server that never quite ends
    header_drip: float = 0.0  # the same for the status line and headers: the client never gets a response


# A route is one Reply, a (status, body, headers) tuple, or a list of them served in turn (the last repeats).
RouteSpec = Reply | tuple | Sequence[Reply | tuple]


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the request arrived
    path: str  # path and query as requested
    status: int
    headers: Mapping[str, str]  # request headers, names lower-cased


def json_reply(payload: object, *, status: int = 200, etag: str | None = None, **kwargs) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode(), etag=etag,
                 headers={"Content-Type": "application/json"}, **kwargs)


class LocalServer:
    """A threading server on 127.0.0.1 (a free port) answering GETs from a path(+query) -> route map.

    `rate_limit` (requests/second, a token bucket holding `burst` tokens) makes it answer 429 with
    Retry-After when a client asks faster; rejected requests spend no token. The burst absorbs the
    scheduling jitter between a client's send and the server's receipt (the default, 1 + a quarter
    second's worth, absorbs 250 ms), so a client paced at the limit is never refused. Every request
    is logged in `hits`.
    """

    def __init__(
        self,
        routes: Mapping[str, RouteSpec] | None = None,
        *,
        rate_limit: float | None = None,
        burst: int | None = None,
        retry_after: int | None = 1,  # seconds sent with a 429; None sends no Retry-After
    ):
        if burst is None:
            burst = 1 + math.ceil((rate_limit or 0) * 0.25)
        self.rate_limit, self.burst, self.retry_after = rate_limit, burst, retry_after
        self.hits: list[Hit] = []
        self._routes: dict[str, list[Reply]] = {}
        self._served: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        for path, spec in (routes or {}).items():
            self.set_route(path, spec)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def set_route(self, path: str, spec: RouteSpec) -> None:
        replies = [spec] if isinstance(spec, (Reply, tuple)) else list(spec)
        if not replies:
            raise ValueError(f"route {path!r} has no reply")
        with self._lock:
            self._routes[path] = [r if isinstance(r, Reply) else Reply(*r) for r in replies]
            self._served[path] = 0

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"LocalServer{self.base_url}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what the server saw ---------------------------------------------------------------------

    def count(self, status: int | None = None, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for h in self.hits if (status is None or h.status == status)
                       and (path is None or h.path == path))

    def per_second(self) -> list[int]:
        """Requests received in each whole second since the first one (empty seconds are 0)."""
        with self._lock:
            times = [h.at for h in self.hits]
        if not times:
            return []
        buckets = Counter(int(t - times[0]) for t in times)
        return [buckets.get(i, 0) for i in range(max(buckets) + 1)]

    def max_in_window(self, seconds: float = 1.0) -> int:
        """The most requests received within any `seconds`-long sliding window."""
        with self._lock:
            times = sorted(h.at for h in self.hits)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    # --- answering -------------------------------------------------------------------------------

    def _admit(self, now: float) -> float | None:
        """None when the request may go on, else the seconds until a token frees up."""
        if self.rate_limit is None:
            return None
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate_limit)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / self.rate_limit

    def _answer(self, raw_path: str, headers: Mapping[str, str]) -> tuple[Reply, int]:
        with self._lock:  # the clock read under the lock, so the bucket never refills backwards
            now = time.monotonic()
            if self._admit(now) is not None:
                extra = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
                reply, status = Reply(429, b'{"error": "rate limited"}', extra), 429
            else:
                key = raw_path if raw_path in self._routes else urlsplit(raw_path).path
                replies = self._routes.get(key)
                if replies is None:
                    reply = Reply(404, b'{"error": "not found"}')
                else:
                    reply = replies[min(self._served[key], len(replies) - 1)]
                    self._served[key] += 1
                status = _status_for(reply, headers)
            self.hits.append(Hit(at=now, path=raw_path, status=status, headers=dict(headers)))
        return reply, status


def _status_for(reply: Reply, headers: Mapping[str, str]) -> int:
    if reply.status != 200:
        return reply.status
    if reply.etag is not None and "if-none-match" in headers:
        tags = [t.strip() for t in headers["if-none-match"].split(",")]
        if reply.etag in tags or "*" in tags:
            return 304
    elif reply.last_modified is not None and "if-modified-since" in headers:
        try:
            if parsedate_to_datetime(headers["if-modified-since"]) >= parsedate_to_datetime(reply.last_modified):
                return 304
        except (TypeError, ValueError):
            pass
    return 200


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply, status = server._answer(self.path, headers)
            if reply.delay:
                time.sleep(reply.delay)
            body = b"" if status == 304 else reply.body
            try:
                self.send_response(status)
                self.send_header("Date", formatdate(usegmt=True))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.etag is not None:
                    self.send_header("ETag", reply.etag)
                if reply.last_modified is not None:
                    self.send_header("Last-Modified", reply.last_modified)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                if reply.header_drip:
                    self._headers_buffer.append(b"\r\n")
                    head, self._headers_buffer = b"".join(self._headers_buffer), []
                    for i in range(len(head)):
                        self.wfile.write(head[i:i + 1])
                        self.wfile.flush()
                        time.sleep(reply.header_drip)
                else:
                    self.end_headers()
                if reply.drip and body:
                    self.wfile.flush()
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                else:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:  # the hits list is the log
            pass

    return Handler

