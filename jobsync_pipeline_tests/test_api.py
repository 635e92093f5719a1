"""The search API through a real server on loopback (uvicorn in a thread), on SQLite and PostgreSQL:
bearer tokens, ownership, run creation and its rate limit, following a run by server-sent events and
by long polling, results and cancel."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from jobsync_pipeline.api.app import ApiSettings, create_app
from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.searches import CANCELLED, PENDING, RUNNING, SUCCESS
from jobsync_pipeline_tests.test_searches import ANN, BOB, catalog, users


@contextmanager
def serving(app) -> Iterator[str]:
    """The app on a free loopback port, for the duration."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class World:
    """A catalog, Ann and Bob with a saved search and a token each, the API serving them."""

    def __init__(self, store_url: str, **settings):
        self.store = catalog(store_url)
        self.searches = users(self.store)
        self.ann_search = self.searches.add_search(ANN, SearchParameters(keywords="python"))
        self.bob_search = self.searches.add_search(BOB, SearchParameters(remote=True))
        self.terminated: list[str] = []
        self.app = create_app(self.searches, ApiSettings(**{"poll_seconds": 0.05, **settings}),
                              terminate=self.terminated.append)
        self.ann = {"Authorization": f"Bearer {self.searches.issue_token(ANN)}"}
        self.bob = {"Authorization": f"Bearer {self.searches.issue_token(BOB)}"}

    def execute(self, run_id: int) -> None:
        """What the search_run job does with a pending run (the Dagster side is tested on its own)."""
        run = self.searches.start(run_id, dagster_run_id="dagster-run-1")
        self.searches.succeed(run_id, *self.searches.execute(SearchParameters.model_validate(run.parameters)))


@pytest.fixture
def world(store_url):
    world = World(store_url)
    with serving(world.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        world.client = client
        yield world


def test_every_call_needs_a_live_bearer_token(world):
    client = world.client
    for headers in ({}, {"Authorization": "Bearer jsk_wrong"}, {"Authorization": "Basic abc"},
                    {"Authorization": world.ann["Authorization"].removeprefix("Bearer ")}):
        answer = client.get("/api/runs", headers=headers)
        assert answer.status_code == 401 and "bearer token" in answer.json()["error"]
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/me", headers=world.ann).json()["email"] == ANN
    world.searches.revoke_tokens(ANN)
    assert client.get("/api/me", headers=world.ann).status_code == 401


def test_a_run_is_created_read_listed_and_its_results_read(world):
    client = world.client
    assert [s["id"] for s in client.get("/api/searches", headers=world.ann).json()] == [world.ann_search.id]
    created = client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann,
                          json={"client_context": {"device": "phone"}})
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == PENDING and run["source"] == "manual" and run["client_context"] == {"device": "phone"}
    assert created.headers["Location"] == f"/api/runs/{run['id']}"
    again = client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann)
    assert again.status_code == 200 and again.json()["id"] == run["id"]  # the pending run, no pile-up
    world.execute(run["id"])
    read = client.get(f"/api/runs/{run['id']}", headers=world.ann).json()
    assert read["status"] == SUCCESS and read["jobs_found"] == 3
    results = client.get(f"/api/runs/{run['id']}/results", headers=world.ann, params={"limit": 2}).json()
    assert [r["rank"] for r in results] == [1, 2] and all("python" in r["title"].lower() for r in results)
    assert [r["id"] for r in client.get("/api/runs", headers=world.ann).json()] == [run["id"]]


def test_another_users_rows_answer_as_if_they_did_not_exist(world):
    client = world.client
    run = client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann).json()
    nothing = client.get("/api/runs/999999", headers=world.bob)
    assert nothing.status_code == 404
    for method, path in (("GET", f"/api/runs/{run['id']}"), ("GET", f"/api/runs/{run['id']}/results"),
                         ("GET", f"/api/runs/{run['id']}/events"), ("POST", f"/api/runs/{run['id']}/cancel"),
                         ("POST", f"/api/searches/{world.ann_search.id}/runs")):
        answer = client.request(method, path, headers=world.bob)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error"].startswith(f"{BOB} has no")
    assert client.get("/api/runs", headers=world.bob).json() == []
    assert world.searches.run(ANN, run["id"]).status == PENDING


@pytest.mark.parametrize("body, error", [
    ('{"client_context": [1, 2]}', "client_context must be a JSON object"),
    ('{"client_context": {"pad": "' + "x" * 5000 + '"}}', "client_context is 5,"),
    ("not json", "not JSON"),
    ('{"other": 1}', '{"client_context": {...}} or nothing'),
])
def test_a_bad_client_context_is_refused_and_nothing_is_written(world, body, error):
    answer = world.client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann, content=body)
    assert answer.status_code == 422 and error in answer.json()["error"]
    assert world.searches.history(ANN) == []


def test_run_creation_is_rate_limited_per_user_with_retry_after(store_url):
    world = World(store_url, runs_per_minute=2)
    with serving(world.app) as base, httpx.Client(base_url=base, timeout=10) as client:
        path = f"/api/searches/{world.ann_search.id}/runs"
        for _ in range(2):
            run = client.post(path, headers=world.ann)
            assert run.status_code == 201
            assert client.post(f"/api/runs/{run.json()['id']}/cancel", headers=world.ann).status_code == 200
        refused = client.post(path, headers=world.ann)
        assert refused.status_code == 429 and "at most 2 new search runs a minute" in refused.json()["error"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert len(world.searches.history(ANN)) == 2  # the refused one wrote nothing
        assert client.post(f"/api/searches/{world.bob_search.id}/runs", headers=world.bob).status_code == 201


def test_server_sent_events_follow_a_run_to_its_end(world):
    run = world.client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann).json()
    events: list[tuple[str, dict]] = []

    def listen():
        with world.client.stream("GET", f"/api/runs/{run['id']}/events", headers=world.ann) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    events.append((name, json.loads(line.removeprefix("data: "))))

    listener = threading.Thread(target=listen)
    listener.start()
    _until(lambda: len(events) == 1)
    world.searches.start(run["id"])
    _until(lambda: len(events) == 2)
    world.searches.succeed(run["id"], [], 0)
    listener.join(10)
    assert not listener.is_alive(), "the stream did not end with the run"
    assert [name for name, _ in events] == ["status", "status", "status", "end"]
    assert [data["run"]["status"] for _, data in events[:3]] == [PENDING, RUNNING, SUCCESS]
    assert events[2][1]["run"]["jobs_found"] == 0 and events[3][1] == {"status": SUCCESS}


def test_a_long_poll_answers_when_the_status_changes_or_the_wait_ends(world):
    run = world.client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann).json()
    began = time.monotonic()
    same = world.client.get(f"/api/runs/{run['id']}", headers=world.ann, params={"wait": 0.3, "status": PENDING})
    assert same.json()["status"] == PENDING and time.monotonic() - began >= 0.3
    threading.Timer(0.3, world.searches.start, args=(run["id"],)).start()
    changed = world.client.get(f"/api/runs/{run['id']}", headers=world.ann, params={"wait": 10, "status": PENDING})
    assert changed.json()["status"] == RUNNING and time.monotonic() - began < 5
    assert world.client.get(f"/api/runs/{run['id']}", headers=world.ann,
                            params={"wait": "soon"}).status_code == 422


def test_cancel_ends_a_running_run_and_its_dagster_run_then_refuses_a_second_time(world):
    run = world.client.post(f"/api/searches/{world.ann_search.id}/runs", headers=world.ann).json()
    world.searches.start(run["id"], dagster_run_id="dagster-run-7")
    cancelled = world.client.post(f"/api/runs/{run['id']}/cancel", headers=world.ann)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == CANCELLED
    assert world.terminated == [run["id"]]
    again = world.client.post(f"/api/runs/{run['id']}/cancel", headers=world.ann)
    assert again.status_code == 409 and "is cancelled" in again.json()["error"]


def _until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
