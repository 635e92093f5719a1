"""The polite HTTP client (jobsync_pipeline/sources/http.py): on a mock transport with a fake clock, then
against a real local server that enforces its own rate limit."""
from __future__ import annotations

import socket
import threading
import time
from email.utils import formatdate

import httpx
import pytest

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.http import DEFAULT_USER_AGENT, FetchError, HttpPolicy, PoliteClient
from jobsync_pipeline.sources.pacing import InProcessPacer
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply

T0 = 1000.0
HTTP_DATE = 1_750_000_000.0  # a wall-clock instant for Date / Retry-After headers


class FakeTime:
    """A monotonic clock that only moves when the client sleeps (or a request 'takes' time)."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """A MockTransport handler answering from a list (the last answer repeats) and logging requests."""

    def __init__(self, *answers, fake: FakeTime | None = None, takes: float = 0.0):
        self.answers = list(answers) or [httpx.Response(200, json={})]
        self.requests: list[httpx.Request] = []
        self.started: list[float] = []  # the fake clock when each request went out
        self.fake, self.takes = fake, takes

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fake:
            self.started.append(self.fake.now)
            self.fake.now += self.takes
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("scripted failure", request=request)
        return answer


def make_client(script: Script, fake: FakeTime, *, jitter: float = 1.0, **policy) -> PoliteClient:
    policy.setdefault("requests_per_second", None)
    return PoliteClient(HttpPolicy(**policy), transport=httpx.MockTransport(script), clock=fake.clock,
                        sleep=fake.sleep, random=lambda: jitter, wall_clock=lambda: HTTP_DATE)


def ok(body: bytes = b"{}", **headers: str) -> httpx.Response:
    return httpx.Response(200, content=body, headers=headers)


# --- pacing ----------------------------------------------------------------------------------------

def test_requests_to_one_host_are_paced():
    fake = FakeTime()
    script = Script(fake=fake, takes=0.1)
    with make_client(script, fake, requests_per_second=2) as client:
        for i in range(5):
            client.get(f"https://boards.example/v1/{i}")
    gaps = [b - a for a, b in zip(script.started, script.started[1:])]
    assert all(gap >= 0.5 for gap in gaps), gaps
    assert fake.now - T0 >= (5 - 1) / 2
    # Measured from the previous start, not its end: a 0.1 s request leaves 0.4 s to wait.
    assert fake.sleeps == pytest.approx([0.4] * 4)
    assert client.stats.requests == 5 and client.stats.waited == pytest.approx(1.6)


def test_two_hosts_are_paced_independently():
    fake = FakeTime()
    script = Script(fake=fake)
    policy = {"requests_per_second": 1, "per_host": {"fast.example": 10}}
    with make_client(script, fake, **policy) as client:
        for _ in range(3):
            client.get("https://slow.example/a")
            client.get("https://fast.example/a")
            client.get("https://other.example:8443/a")  # a third host, at the default rate
    by_host: dict[str, list[float]] = {}
    for request, started in zip(script.requests, script.started):
        by_host.setdefault(request.url.netloc.decode(), []).append(started)
    assert by_host["slow.example"] == [T0, T0 + 1, T0 + 2]
    assert by_host["fast.example"] == [T0, T0 + 1, T0 + 2]  # never held back by slow.example
    assert by_host["other.example:8443"] == [T0, T0 + 1, T0 + 2]
    assert fake.sleeps == [1.0, 1.0]  # only slow.example's slot was ever waited for


def test_per_host_rate_override_and_port_specific_override():
    fake = FakeTime()
    script = Script(fake=fake)
    policy = {"requests_per_second": 1, "per_host": {"api.example": 4, "api.example:9000": 2}}
    with make_client(script, fake, **policy) as client:
        client.get("https://api.example/x")
        client.get("https://api.example/y")
        client.get("http://api.example:9000/x")
        client.get("http://api.example:9000/y")
    assert fake.sleeps == pytest.approx([0.25, 0.5])  # api.example:9000 is its own host, at 2/s


def test_a_hold_placed_while_a_request_sleeps_voids_its_slot():
    """Another client's (or process's) Retry-After arrives while this request sleeps for its slot: the
    slot it reserved is void, it reserves again behind the hold."""
    fake = FakeTime()
    script = Script(fake=fake)
    pacer = InProcessPacer(fake.clock)

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        if len(fake.sleeps) == 1:
            pacer.hold_off("api.example", 5.0)

    client = PoliteClient(HttpPolicy(requests_per_second=1), transport=httpx.MockTransport(script),
                          clock=fake.clock, sleep=sleep, pacer=pacer)
    with client:
        client.get("https://api.example/a")
        client.get("https://api.example/b")
    assert script.started == [T0, T0 + 6]
    assert fake.sleeps == [1.0, 5.0] and client.stats.waited == 6.0


def test_clients_given_one_pacer_share_the_hosts_slots():
    fake = FakeTime()
    script = Script(fake=fake)
    pacer = InProcessPacer(fake.clock)
    clients = [PoliteClient(HttpPolicy(requests_per_second=2), transport=httpx.MockTransport(script),
                            clock=fake.clock, sleep=fake.sleep, pacer=pacer) for _ in range(2)]
    for i in range(4):
        clients[i % 2].get("https://api.example/x")
    assert script.started == [T0, T0 + 0.5, T0 + 1.0, T0 + 1.5]
    assert clients[0].pacer is clients[1].pacer is pacer


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="must be > 0"):
        HttpPolicy(requests_per_second=0)
    with pytest.raises(ValueError, match="must be > 0"):
        HttpPolicy(per_host={"a.example": -1})
    with pytest.raises(ValueError, match="max_attempts"):
        HttpPolicy(max_attempts=0)


# --- Retry-After -----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(status):
    fake = FakeTime()
    script = Script(httpx.Response(status, headers={"Retry-After": "7"}), ok(b"[1]"), fake=fake)
    with make_client(script, fake, requests_per_second=1) as client:
        fetched = client.get("https://api.example/postings")
    assert fetched.body == b"[1]" and fetched.attempts == 2
    assert fake.sleeps == [7.0]
    assert client.stats.retries == 1 and client.stats.requests == 2
    assert client.stats.throttled == (1 if status == 429 else 0)


def test_retry_after_http_date_is_measured_against_the_servers_date():
    fake = FakeTime()
    throttled = httpx.Response(429, headers={
        "Date": formatdate(HTTP_DATE + 3600, usegmt=True),  # our wall clock is an hour off; the server's counts
        "Retry-After": formatdate(HTTP_DATE + 3600 + 30, usegmt=True),
    })
    script = Script(throttled, ok(), fake=fake)
    with make_client(script, fake) as client:
        assert client.get("https://api.example/a").attempts == 2
    assert fake.sleeps == [30.0]


def test_retry_after_http_date_without_a_date_header_uses_the_wall_clock():
    fake = FakeTime()
    script = Script(httpx.Response(503, headers={"Retry-After": formatdate(HTTP_DATE + 12, usegmt=True)}), ok(),
                    fake=fake)
    with make_client(script, fake) as client:
        client.get("https://api.example/a")
    assert fake.sleeps == [12.0]


def test_retry_after_in_the_past_or_garbled_falls_back_to_backoff():
    fake = FakeTime()
    script = Script(httpx.Response(429, headers={"Retry-After": formatdate(HTTP_DATE - 60, usegmt=True)}),
                    httpx.Response(429, headers={"Retry-After": "soon"}), ok(), fake=fake)
    with make_client(script, fake, jitter=0.5, backoff_base=2) as client:
        assert client.get("https://api.example/a").attempts == 3
    # A past date means "now" (only the pace applies, none here); "soon" means the second backoff step.
    assert fake.sleeps == [2.0]


def test_retry_after_over_the_cap_fails_at_once():
    fake = FakeTime()
    script = Script(httpx.Response(429, headers={"Retry-After": "86400"}), ok(), fake=fake)
    with make_client(script, fake, retry_after_cap=120) as client:
        with pytest.raises(FetchError) as caught:
            client.get("https://api.example/board")
    assert caught.value.status == 429 and caught.value.url == "https://api.example/board"
    assert "https://api.example/board" in str(caught.value)
    assert "86400 s" in str(caught.value) and "120 s cap" in str(caught.value)
    assert len(script.requests) == 1 and fake.sleeps == []


def test_retry_after_holds_back_other_requests_to_the_same_host():
    fake = FakeTime()
    script = Script(httpx.Response(503, headers={"Retry-After": "5"}), ok(), fake=fake)
    client = make_client(script, fake, max_attempts=1)
    with pytest.raises(FetchError, match="gave up after 1 attempts: 503"):
        client.get("https://api.example/a")
    client.get("https://api.example/b")  # another board on the same host still waits its turn
    client.get("https://elsewhere.example/b")  # another host does not
    assert fake.sleeps == [5.0]
    client.close()


# --- backoff ---------------------------------------------------------------------------------------

def test_5xx_backs_off_exponentially_then_succeeds():
    fake = FakeTime()
    script = Script(httpx.Response(500), httpx.Response(502), httpx.Response(504), ok(b"done"), fake=fake)
    with make_client(script, fake, backoff_base=0.5) as client:
        fetched = client.get("https://api.example/a")
    assert fetched.body == b"done" and fetched.attempts == 4 and fetched.status == 200
    assert fake.sleeps == [0.5, 1.0, 2.0]
    assert client.stats.requests == 4 and client.stats.retries == 3 and client.stats.throttled == 0


def test_backoff_is_fully_jittered_and_capped():
    fake = FakeTime()
    script = Script(httpx.Response(500), fake=fake)
    with make_client(script, fake, jitter=0.25, backoff_base=1, backoff_max=3, max_attempts=5) as client:
        with pytest.raises(FetchError):
            client.get("https://api.example/a")
    assert fake.sleeps == [0.25, 0.5, 0.75, 0.75]  # 0.25 x (1, 2, 3 capped, 3 capped)


def test_gives_up_after_max_attempts_naming_the_url():
    fake = FakeTime()
    script = Script(httpx.Response(503, text="upstream overloaded"), fake=fake)
    with make_client(script, fake, max_attempts=5) as client:
        with pytest.raises(FetchError) as caught:
            client.get("https://boards-api.example/v1/boards/acme/jobs", params={"content": "true"})
    url = "https://boards-api.example/v1/boards/acme/jobs?content=true"
    assert str(caught.value) == f"GET {url} gave up after 5 attempts: 503 Service Unavailable: upstream overloaded"
    assert caught.value.url == url and caught.value.status == 503
    assert isinstance(caught.value, BoardError)
    assert len(script.requests) == 5 and client.stats.retries == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_fail_at_once(status):
    fake = FakeTime()
    script = Script(httpx.Response(status, json={"error": "Job board not found"}), fake=fake)
    with make_client(script, fake) as client:
        with pytest.raises(FetchError) as caught:
            client.get("https://api.example/v1/boards/nope")
    assert caught.value.status == status
    assert str(caught.value).startswith(f"GET https://api.example/v1/boards/nope answered {status} ")
    assert "Job board not found" in str(caught.value)
    assert len(script.requests) == 1 and fake.sleeps == [] and client.stats.retries == 0


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout,
                                   httpx.ReadError, httpx.RemoteProtocolError])
def test_network_trouble_is_retried(error):
    fake = FakeTime()
    script = Script(error, error, ok(b"ok"), fake=fake)
    with make_client(script, fake) as client:
        fetched = client.get("https://api.example/a")
    assert fetched.attempts == 3 and fetched.body == b"ok"
    assert fake.sleeps == [0.5, 1.0]


def test_network_trouble_that_never_ends_fails_without_status():
    fake = FakeTime()
    script = Script(httpx.ConnectError, fake=fake)
    with make_client(script, fake, max_attempts=3) as client:
        with pytest.raises(FetchError) as caught:
            client.get("https://down.example/a")
    assert caught.value.status is None
    assert str(caught.value) == "GET https://down.example/a gave up after 3 attempts: ConnectError: scripted failure"


def test_unusable_url_fails_clearly():
    with PoliteClient(HttpPolicy()) as client:
        with pytest.raises(FetchError, match="not a usable URL"):
            client.get("ftp://example.com/x")


# --- conditional requests, headers, body limit -----------------------------------------------------

def test_validators_are_sent_and_304_is_not_modified():
    fake = FakeTime()
    script = Script(httpx.Response(304, headers={"ETag": '"v2"'}), fake=fake)
    since = "Wed, 21 Oct 2015 07:28:00 GMT"
    with make_client(script, fake) as client:
        fetched = client.get("https://api.example/a", etag='"v2"', last_modified=since)
    sent = script.requests[0].headers
    assert sent["If-None-Match"] == '"v2"' and sent["If-Modified-Since"] == since
    assert fetched.not_modified and fetched.status == 304 and fetched.body == b""
    assert fetched.etag == '"v2"' and fetched.last_modified == since  # kept when the 304 omits it
    assert client.stats.not_modified == 1 and client.stats.bytes == 0


def test_validators_come_back_and_are_not_sent_unless_given():
    fake = FakeTime()
    script = Script(ok(b"[]", ETag='W/"abc"', **{"Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT"}), fake=fake)
    with make_client(script, fake) as client:
        fetched = client.get("https://api.example/a")
    assert "If-None-Match" not in script.requests[0].headers
    assert "If-Modified-Since" not in script.requests[0].headers
    assert fetched.etag == 'W/"abc"' and fetched.last_modified == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert not fetched.not_modified and client.stats.bytes == 2


def test_user_agent_is_sent():
    fake = FakeTime()
    script = Script(fake=fake)
    with make_client(script, fake) as client:
        client.get("https://api.example/a")
    with make_client(script, fake, user_agent="jobsync-test/9") as client:
        client.get("https://api.example/a")
    assert script.requests[0].headers["User-Agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("jobsync/") and "+https://" in DEFAULT_USER_AGENT
    assert script.requests[1].headers["User-Agent"] == "jobsync-test/9"


def test_a_declared_body_over_the_limit_is_refused():
    fake = FakeTime()
    script = Script(ok(b"x" * 101), fake=fake)
    with make_client(script, fake, max_body_bytes=100) as client:
        with pytest.raises(FetchError, match=r"declares 101 bytes, over the 100-byte limit") as caught:
            client.get("https://api.example/huge")
    assert caught.value.status == 200 and len(script.requests) == 1


def test_a_streamed_body_over_the_limit_is_cut_off():
    fake = FakeTime()
    sent: list[int] = []

    def endless():
        for i in range(1000):
            sent.append(i)
            yield b"x" * 40

    script = Script(httpx.Response(200, content=endless()), fake=fake)  # chunked: no Content-Length
    with make_client(script, fake, max_body_bytes=100) as client:
        with pytest.raises(FetchError, match="sent over the 100-byte limit"):
            client.get("https://api.example/huge")
    assert len(sent) < 10 and len(script.requests) == 1


def test_body_exactly_at_the_limit_is_fine():
    fake = FakeTime()
    script = Script(ok(b"y" * 100), fake=fake)
    with make_client(script, fake, max_body_bytes=100) as client:
        assert client.get("https://api.example/a").body == b"y" * 100


# --- a real server with its own rate limit ---------------------------------------------------------

def real_client(**policy) -> PoliteClient:
    policy.setdefault("connect_timeout", 2)
    policy.setdefault("read_timeout", 5)
    return PoliteClient(HttpPolicy(**policy), random=lambda: 0.0)


def fetch_all(client: PoliteClient, urls: list[str], threads: int) -> list:
    results: list = [None] * len(urls)

    def work(k: int) -> None:
        for i in range(k, len(urls), threads):
            try:
                results[i] = client.get(urls[i])
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results[i] = exc

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    return results


@pytest.mark.parametrize(("client_rate", "threads", "n"), [(20, 4, 40), (10, 1, 20)])
def test_a_client_at_or_below_the_servers_limit_is_never_throttled(client_rate, threads, n):
    routes = {f"/boards/b{i}/jobs": json_reply({"jobs": [i]}) for i in range(n)}
    with LocalServer(routes, rate_limit=20) as server, real_client(requests_per_second=client_rate) as client:
        results = fetch_all(client, [server.url(path) for path in routes], threads)
    assert all(getattr(r, "status", None) == 200 for r in results), results
    assert server.count() == n  # one request per board: no retries
    assert server.count(429) == 0 and client.stats.throttled == 0 and client.stats.retries == 0
    assert sum(server.per_second()) == n
    # By the server's own clock, no second held more than the pace plus the jitter the server absorbs.
    assert max(server.per_second()) <= client_rate + server.burst
    assert server.max_in_window(1.0) <= client_rate + server.burst


def test_two_real_hosts_are_paced_independently():
    routes = {f"/b{i}": json_reply([i]) for i in range(10)}
    with LocalServer(routes, rate_limit=10) as one, LocalServer(routes, rate_limit=10) as two, \
            real_client(requests_per_second=10) as client:
        urls = [server.url(path) for path in routes for server in (one, two)]
        results = fetch_all(client, urls, threads=2)
    assert all(getattr(r, "status", None) == 200 for r in results), results
    assert one.count() == two.count() == 10 and one.count(429) == two.count(429) == 0
    # Each host had its own 10/s: the two logs overlap in time instead of running one after the other.
    assert two.hits[0].at < one.hits[-1].at and one.hits[0].at < two.hits[-1].at


def test_a_client_too_fast_is_throttled_but_succeeds_by_honouring_retry_after():
    routes = {f"/b{i}": json_reply({"n": i}) for i in range(8)}
    # 2/s, 2 at once: an unpaced client overshoots even on a loaded machine; each 1 s wait buys 2 more.
    with LocalServer(routes, rate_limit=2, burst=2, retry_after=1) as server, \
            real_client(requests_per_second=None) as client:
        results = fetch_all(client, [server.url(path) for path in routes], threads=1)
    assert all(getattr(r, "status", None) == 200 for r in results), results
    throttled = server.count(429)
    assert throttled >= 1
    assert client.stats.throttled == throttled and client.stats.retries == throttled
    assert server.count(200) == 8 and server.count() == 8 + throttled
    # After every 429 the client kept away for the whole Retry-After (a lower bound: sleep never wakes early).
    for hit, following in zip(server.hits, server.hits[1:]):
        if hit.status == 429:
            assert following.at - hit.at >= 1.0 - 1e-3


def test_a_503_once_is_retried_after_its_retry_after():
    path = "/v0/postings/acme?mode=json"
    routes = {path: [Reply(503, b"maintenance", {"Retry-After": "1"}), json_reply([{"id": "p1"}])]}
    with LocalServer(routes, rate_limit=20) as server, real_client(requests_per_second=20) as client:
        fetched = client.get(server.url("/v0/postings/acme"), params={"mode": "json"})
    assert fetched.status == 200 and fetched.attempts == 2 and b"p1" in fetched.body
    assert [h.status for h in server.hits] == [503, 200] and server.hits[0].path == path
    assert server.hits[1].at - server.hits[0].at >= 1.0 - 1e-3
    assert client.stats.retries == 1 and client.stats.throttled == 0


def test_etag_and_last_modified_against_a_real_server():
    since = "Wed, 21 Oct 2015 07:28:00 GMT"
    routes = {"/etag": json_reply({"jobs": []}, etag='"v1"'), "/lm": json_reply([1], last_modified=since)}
    with LocalServer(routes) as server, real_client(requests_per_second=None) as client:
        first = client.get(server.url("/etag"))
        again = client.get(server.url("/etag"), etag=first.etag)
        dated = client.get(server.url("/lm"))
        dated_again = client.get(server.url("/lm"), last_modified=dated.last_modified)
    assert first.etag == '"v1"' and not first.not_modified and first.body == b'{"jobs": []}'
    assert again.not_modified and again.body == b"" and again.etag == '"v1"'
    assert dated.last_modified == since and dated_again.not_modified
    assert [h.status for h in server.hits] == [200, 304, 200, 304]
    assert server.hits[1].headers["if-none-match"] == '"v1"'
    assert all(h.headers["user-agent"] == DEFAULT_USER_AGENT for h in server.hits)
    assert client.stats.not_modified == 2 and client.stats.bytes == len(first.body) + len(dated.body)


def test_a_slow_answer_times_out_and_is_retried():
    routes = {"/slow": [Reply(200, b"late", delay=1.0), Reply(200, b"prompt")]}
    with LocalServer(routes) as server, real_client(requests_per_second=None, read_timeout=0.3) as client:
        fetched = client.get(server.url("/slow"))
    assert fetched.body == b"prompt" and fetched.attempts == 2
    assert server.count(path="/slow") == 2 and client.stats.retries == 1


def test_unknown_path_on_a_real_server_is_one_404():
    with LocalServer({}) as server, real_client() as client:
        with pytest.raises(FetchError) as caught:
            client.get(server.url("/v1/boards/ghost/jobs"))
    assert caught.value.status == 404 and server.count() == 1


def test_nothing_listening_is_retried_then_fails_without_status():
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with real_client(requests_per_second=None, max_attempts=2) as client:
        with pytest.raises(FetchError) as caught:
            client.get(f"http://127.0.0.1:{port}/x")
    assert caught.value.status is None and "gave up after 2 attempts: ConnectError" in str(caught.value)
    assert client.stats.requests == 2


# --- pacing shared through the store (store/pacing.py): clients in other processes -----------------
# Each client gets its own StorePacer, as a client in another process would: they share only the store.

def store_client(store_url: str, **policy) -> PoliteClient:
    from jobsync_pipeline.store.pacing import StorePacer

    policy.setdefault("connect_timeout", 2)
    policy.setdefault("read_timeout", 5)
    return PoliteClient(HttpPolicy(**policy), random=lambda: 0.0, pacer=StorePacer(store_url))


def test_clients_sharing_a_store_keep_one_pace_between_them(store_url):
    routes = {f"/b{i}": json_reply([i]) for i in range(8)}
    urls = list(routes)
    with LocalServer(routes) as server:
        one, two = store_client(store_url, requests_per_second=2), store_client(store_url, requests_per_second=2)
        with one, two:
            workers = [threading.Thread(target=lambda c=c, k=k: [c.get(server.url(u)) for u in urls[k::2]])
                       for k, c in enumerate((one, two))]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=60)
        shared = sorted(h.at for h in server.hits)
        # The same two clients, each with its own pacer: what every process did before.
        with real_client(requests_per_second=2) as three, real_client(requests_per_second=2) as four:
            before = len(server.hits)
            workers = [threading.Thread(target=lambda c=c: [c.get(server.url(u)) for u in urls[:2]])
                       for c in (three, four)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=60)
            alone = sorted(h.at for h in server.hits[before:])
    assert len(shared) == 8 and server.count(200) == 12
    gaps = [b - a for a, b in zip(shared, shared[1:])]
    assert min(gaps) >= 0.5 - 0.05, gaps  # 2/s for the host, not for each client (50 ms of jitter)
    assert min(b - a for a, b in zip(alone, alone[1:])) < 0.1  # unshared: the two clients' requests collide


def test_a_retry_after_one_client_got_holds_back_another(store_url):
    routes = {"/a": [Reply(429, b"slow down", {"Retry-After": "1"}), json_reply([1])], "/b": json_reply([2])}
    with LocalServer(routes) as server:
        throttled, other = (store_client(store_url, requests_per_second=20) for _ in range(2))
        with throttled, other:
            first = threading.Thread(target=throttled.get, args=(server.url("/a"),))
            first.start()
            host, deadline = server.base_url.removeprefix("http://"), time.monotonic() + 10
            while getattr(other.pacer.slots(host), "held_until", 0) <= 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # until the 429 is answered and its hold written
            other.get(server.url("/b"))
            first.join(10)
    (refused,) = [h for h in server.hits if h.status == 429]
    later = [h for h in server.hits if h.at > refused.at]
    assert sorted(h.path for h in later) == ["/a", "/b"]
    # Neither the retry nor the other client's first request came before the Retry-After was up.
    assert all(h.at - refused.at >= 1.0 - 0.05 for h in later), [h.at - refused.at for h in later]


def test_the_http_resource_hands_its_clients_the_stores_pacer(sqlite_url, postgres_url, monkeypatch):
    import dagster as dg

    from jobsync_pipeline.defs.resources import HttpResource, build_resources
    from jobsync_pipeline.settings import DATABASE_URL_VAR
    from jobsync_pipeline.store.pacing import StorePacer

    with HttpResource(pacing_store_url=postgres_url).client() as client:
        assert isinstance(client.pacer, StorePacer) and client.pacer.store_url == postgres_url
    with HttpResource(pacing_store_url="sqlite://").client() as client:  # an in-memory store: nothing to share
        assert isinstance(client.pacer, InProcessPacer)
    monkeypatch.setenv(DATABASE_URL_VAR, sqlite_url)
    with HttpResource().client() as client:  # unset: the store resource's default, JOBSYNC_DATABASE_URL
        assert client.pacer.store_url == sqlite_url
    with dg.build_resources(build_resources()) as resources:  # as the lanes, discovery and the CLI get it
        with resources.http.client() as client, resources.http.client(0.5) as feed_client:
            assert client.pacer.store_url == feed_client.pacer.store_url == resources.store.resolved_url()


# --- redirects and the per-attempt deadline, against real local servers -----------------------------

def test_a_redirect_to_another_host_is_refused_and_never_followed():
    with LocalServer({"/jobs": json_reply({"jobs": ["theirs"]})}) as elsewhere:
        routes = {"/v1/boards/acme/jobs": Reply(302, headers={"Location": elsewhere.url("/jobs")})}
        with LocalServer(routes) as server, real_client(requests_per_second=None) as client:
            with pytest.raises(FetchError) as caught:
                client.get(server.url("/v1/boards/acme/jobs"))
    message = str(caught.value)
    assert server.url("/v1/boards/acme/jobs") in message and elsewhere.url("/jobs") in message
    assert "refused, a redirect may not leave the API host" in message and caught.value.status == 302
    assert server.count() == 1 and elsewhere.count() == 0  # refused at once: not retried, not followed
    assert client.stats.retries == 0


def test_a_redirect_to_the_same_host_on_another_scheme_or_port_is_refused_too():
    fake = FakeTime()
    script = Script(httpx.Response(301, headers={"Location": "http://boards.example/v1/acme"}), ok(), fake=fake)
    with make_client(script, fake) as client, pytest.raises(FetchError, match="may not leave the API host"):
        client.get("https://boards.example/v1/acme")
    script = Script(httpx.Response(307, headers={"Location": "https://boards.example:8443/v1/acme"}), ok(), fake=fake)
    with make_client(script, fake) as client, pytest.raises(FetchError, match="https://boards.example:8443"):
        client.get("https://boards.example/v1/acme")
    # The default port spelled out is the same host.
    script = Script(httpx.Response(308, headers={"Location": "https://boards.example:443/v2/acme"}), ok(b"[]"),
                    fake=fake)
    with make_client(script, fake) as client:
        assert client.get("https://boards.example/v1/acme").body == b"[]"


def test_a_redirect_within_the_host_is_followed():
    routes = {"/v1/boards/acme/jobs": Reply(302, headers={"Location": "/v1/boards/acme-inc/jobs"}),
              "/v1/boards/acme-inc/jobs": json_reply({"jobs": [1]}, etag='"v1"')}
    with LocalServer(routes) as server, real_client(requests_per_second=None) as client:
        fetched = client.get(server.url("/v1/boards/acme/jobs"))
    assert fetched.status == 200 and fetched.body == b'{"jobs": [1]}' and fetched.etag == '"v1"'
    assert fetched.url == server.url("/v1/boards/acme-inc/jobs") and fetched.attempts == 1
    assert [h.path for h in server.hits] == ["/v1/boards/acme/jobs", "/v1/boards/acme-inc/jobs"]
    assert client.stats.requests == 2 and client.stats.retries == 0


def test_a_redirect_loop_within_the_host_fails_at_once():
    routes = {"/a": Reply(302, headers={"Location": "/b"}), "/b": Reply(302, headers={"Location": "/a"})}
    with LocalServer(routes) as server, real_client(requests_per_second=None) as client:
        with pytest.raises(FetchError, match="more than 5 redirects"):
            client.get(server.url("/a"))
    assert server.count() == 6


def test_a_dripping_body_hits_the_deadline_and_is_retried():
    routes = {"/drip": Reply(200, b"x" * 20, drip=0.5)}  # 10 s for the whole body, one byte at a time
    with LocalServer(routes) as server, \
            real_client(requests_per_second=None, deadline_seconds=1.5, max_attempts=2) as client:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            client.get(server.url("/drip"))
        took = time.monotonic() - started
    assert "gave up after 2 attempts: no complete answer within 1.5 s" in str(caught.value)
    assert caught.value.status is None
    assert 2 * 1.5 <= took < 2 * 1.5 + 1.5, took  # the read timeout (5 s) never fired: each byte reset it
    assert server.count(path="/drip") == 2 and client.stats.retries == 1


def test_a_slow_header_is_cut_off_at_the_deadline_not_the_read_timeout():
    routes = {"/late": [Reply(200, b"late", delay=3.0), Reply(200, b"prompt")]}
    with LocalServer(routes) as server, \
            real_client(requests_per_second=None, deadline_seconds=0.5, read_timeout=5) as client:
        started = time.monotonic()
        fetched = client.get(server.url("/late"))
        took = time.monotonic() - started
    assert fetched.body == b"prompt" and fetched.attempts == 2 and took < 2.0, took


def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline():
    # Each header byte resets the read timeout and httpx waits for the whole head before it returns:
    # only a deadline enforced on every read of the connection ends this.
    routes = {"/head": Reply(200, b"never", header_drip=0.2)}  # a head of ~90 bytes: ~18 s
    with LocalServer(routes) as server, \
            real_client(requests_per_second=None, deadline_seconds=1.0, read_timeout=5, max_attempts=2) as client:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            client.get(server.url("/head"))
        took = time.monotonic() - started
    assert "gave up after 2 attempts: no complete answer within 1 s" in str(caught.value)
    assert caught.value.status is None
    assert 2 * 1.0 <= took < 2 * 1.0 + 1.5, took
    assert server.count(path="/head") == 2 and client.stats.retries == 1


def test_a_deadline_cuts_the_connection_not_the_next_request():
    # The connection cut off mid-head is dropped; the next request on the same client gets a fresh one.
    routes = {"/head": Reply(200, b"never", header_drip=0.2), "/ok": Reply(200, b"fine")}
    with LocalServer(routes) as server, \
            real_client(requests_per_second=None, deadline_seconds=1.0, max_attempts=1) as client:
        with pytest.raises(FetchError):
            client.get(server.url("/head"))
        assert client.get(server.url("/ok")).body == b"fine"


def test_the_deadline_must_be_positive():
    with pytest.raises(ValueError, match="deadline_seconds"):
        HttpPolicy(deadline_seconds=0)


def test_the_http_resource_gives_feeds_their_own_deadline():
    from types import SimpleNamespace

    from jobsync_pipeline.defs.resources import HttpResource, SyncPolicyResource
    from jobsync_pipeline.defs.source_specs import GREENHOUSE, REMOTEOK

    http = HttpResource(pacing_store_url="sqlite://", request_deadline_seconds=45, feed_request_deadline_seconds=90)
    resources = SimpleNamespace(http=http, sync_policy=SyncPolicyResource())
    board, feed = GREENHOUSE.connector(resources), REMOTEOK.connector(resources)
    try:
        assert board.client.policy.deadline_seconds == 45 and feed.client.policy.deadline_seconds == 90
    finally:
        board.close()
        feed.close()
    assert HttpResource().request_deadline_seconds == 60 and HttpResource().feed_request_deadline_seconds == 120
