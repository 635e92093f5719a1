"""The deadline transport on its own, with plain httpx against a real local server."""
from __future__ import annotations

import threading
import time

import httpx
import pytest

from jobsync_pipeline.sources.deadline import DeadlineTransport, deadline
from jobsync_pipeline_tests.http_server import LocalServer, Reply


def test_outside_a_deadline_it_is_httpx_as_usual():
    with LocalServer({"/ok": Reply(200, b"fine")}) as server, httpx.Client(transport=DeadlineTransport()) as client:
        assert client.get(server.url("/ok")).content == b"fine"


def test_a_passed_deadline_fails_before_anything_is_sent():
    with LocalServer({"/ok": Reply(200, b"fine")}) as server, httpx.Client(transport=DeadlineTransport()) as client:
        with deadline(lambda: 0.0), pytest.raises(httpx.ConnectTimeout, match="deadline has passed"):
            client.get(server.url("/ok"))
    assert server.count() == 0


def test_a_dripped_head_ends_at_the_deadline_although_every_read_succeeds():
    routes = {"/head": Reply(200, b"never", header_drip=0.2)}
    with LocalServer(routes) as server, \
            httpx.Client(transport=DeadlineTransport(), timeout=5.0) as client:
        due = time.monotonic() + 1.0
        started = time.monotonic()
        with deadline(lambda: due - time.monotonic()), pytest.raises(httpx.ReadTimeout):
            client.get(server.url("/head"))
        took = time.monotonic() - started
    assert 1.0 <= took < 1.5, took  # not the 5 s read timeout, not the ~18 s the head takes


def test_each_thread_has_its_own_deadline():
    # One client shared by threads (the lanes share theirs): a passed deadline on one thread is not another's.
    outcome: dict[str, object] = {}
    with LocalServer({"/ok": Reply(200, b"fine", delay=0.3)}) as server, \
            httpx.Client(transport=DeadlineTransport()) as client:
        def expired() -> None:
            with deadline(lambda: 0.0):
                try:
                    client.get(server.url("/ok"))
                except httpx.TimeoutException as exc:
                    outcome["expired"] = exc

        thread = threading.Thread(target=expired)
        with deadline(lambda: 10.0):
            thread.start()
            outcome["open"] = client.get(server.url("/ok")).content
        thread.join()
    assert outcome["open"] == b"fine" and isinstance(outcome["expired"], httpx.ConnectTimeout)
