"""The Greenhouse and Lever lanes materialized in-process against a local server and a real store."""
from __future__ import annotations

import json

import dagster as dg
import pytest

from jobsync_pipeline.defs.lanes import build_source_lane
from jobsync_pipeline.defs.partitions import range_tags
from jobsync_pipeline.defs.resources import HttpResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.sources import GREENHOUSE, LEVER, SourceSpec
from jobsync_pipeline.store import Store
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply
from jobsync_pipeline_tests.lane_helpers import query

GREENHOUSE_LANE = build_source_lane(GREENHOUSE)
LEVER_LANE = build_source_lane(LEVER)
LANES = {GREENHOUSE.name: GREENHOUSE_LANE, LEVER.name: LEVER_LANE}
NORTHWIND = (FIXTURES / "greenhouse" / "northwindlabs.jobs.json").read_bytes()
EMPTY_BOARD = (FIXTURES / "greenhouse" / "quietharbor.jobs.json").read_bytes()
NOT_FOUND = Reply(status=404, body=(FIXTURES / "greenhouse" / "unknown_board.jobs.404.json").read_bytes())
HTML_PAGE = Reply(body=b"<html><body><h1>We'll be right back</h1></body></html>",
                  headers={"Content-Type": "text/html"})
ACCEPT_SHRINK = {"ops": {"greenhouse__job_diff": {"config": {"accept_shrink": True}}}}


@pytest.fixture
def instance():
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def server():
    with LocalServer() as server:
        yield server


def board_path(board: str) -> str:
    return f"/v1/boards/{board}/jobs?content=true"


def site_path(site: str, skip: int, limit: int = 100) -> str:
    return f"/v0/postings/{site}?mode=json&skip={skip}&limit={limit}"


def board_jobs(board: str, ids) -> dict:
    """A Greenhouse jobs document listing `ids`."""
    ids = list(ids)
    return {"jobs": [{"id": i, "title": f"{board} role {i}", "location": {"name": f"City {i % 7}"},
                      "absolute_url": f"https://job-boards.greenhouse.io/{board}/jobs/{i}",
                      "content": "&lt;p&gt;Build things.&lt;/p&gt;", "company_name": board.title(),
                      "updated_at": "2026-11-19T09:14:02-05:00"} for i in ids],
            "meta": {"total": len(ids)}}


def sync(instance: dg.DagsterInstance, store_url: str, server: LocalServer, boards: list[str],
         spec: SourceSpec = GREENHOUSE, **kwargs) -> dg.ExecuteInProcessResult:
    """One run of the lane over `boards` (in partition order: a single-run backfill when several)."""
    known = instance.get_dynamic_partitions(spec.partitions_name)
    instance.add_dynamic_partitions(spec.partitions_name, [b for b in boards if b not in known])
    known = instance.get_dynamic_partitions(spec.partitions_name)
    selected = sorted(boards, key=known.index)
    assert selected == known[known.index(selected[0]):known.index(selected[-1]) + 1], "not one range"
    return dg.materialize(
        LANES[spec.name].assets, instance=instance, raise_on_error=False,
        resources={"store": StoreResource(url=store_url),
                   "http": HttpResource(requests_per_second=1000, greenhouse_base_url=server.base_url,
                                        lever_base_url=server.base_url),
                   "sync_policy": SyncPolicyResource(retire_after_not_found=3)},
        **({"partition_key": selected[0]} if len(selected) == 1 else {"tags": range_tags(selected[0], selected[-1])}),
        **kwargs)


def partition_metadata(result: dg.ExecuteInProcessResult, stage: str, source: str = "greenhouse") -> dict[str, dict]:
    return {m.partition: {k: v.value for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node(f"{source}__{stage}")}


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(e.step_failure_data.error.message for e in result.all_events if e.is_step_failure)


def run_syncs(url: str, result: dg.ExecuteInProcessResult) -> dict[str, tuple[str, str | None]]:
    return {b: (s, e) for b, s, e in query(url, "select board, status, error from syncs where run_id = :run",
                                           run=result.run_id)}


def active_jobs(url: str, board: str) -> int:
    return query(url, "select count(*) from jobs where board = :board and expired_at is null", board=board)[0][0]


def board_status(url: str, board: str, source: str = "greenhouse") -> str:
    (info,) = [b for b in Store(url).boards.describe(source) if b.board == board]
    return info.status


def test_a_greenhouse_board_syncs_end_to_end(instance, store_url, server):
    server.set_route(board_path("northwindlabs"), Reply(body=NORTHWIND, etag='"v1"'))

    result = sync(instance, store_url, server, ["northwindlabs"])

    assert result.success
    jobs = dict((e, (t, loc, c)) for e, t, loc, c in query(
        store_url, "select external_id, title, location, company from jobs where expired_at is null"))
    assert len(jobs) == 6
    assert jobs["7423011"] == ("Senior Data Engineer", "Berlin, Germany", "Northwind Labs")
    assert jobs["7423024"][0] == "Trust & Safety Analyst"
    assert jobs["7423044"][1] == "München, Deutschland"
    assert partition_metadata(result, "raw_snapshot")["northwindlabs"]["not_modified"] == 0
    diff = partition_metadata(result, "job_diff")["northwindlabs"]
    assert (diff["found"], diff["new"], diff["expired"], diff["guarded"]) == (6, 6, 0, 0)
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed) == ("mass_expiry_guard", True)
    assert query(store_url, "select status, found, new from syncs") == [("success", 6, 6)]
    assert board_status(store_url, "northwindlabs") == "active"


def test_an_unchanged_board_answers_304_and_writes_nothing(instance, sqlite_url, server):
    server.set_route(board_path("northwindlabs"), Reply(body=NORTHWIND, etag='W/"v1"'))
    assert sync(instance, sqlite_url, server, ["northwindlabs"]).success
    before = query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id")

    again = sync(instance, sqlite_url, server, ["northwindlabs"])

    assert again.success
    assert server.hits[-1].headers["if-none-match"] == 'W/"v1"' and server.hits[-1].status == 304
    assert query(sqlite_url, "select count(*) from raw_snapshots") == [(1,)]
    assert query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id") == before
    raw = partition_metadata(again, "raw_snapshot")["northwindlabs"]
    assert (raw["not_modified"], raw["identical_payload"], raw["bytes"]) == (1, 1, 0)
    diff = partition_metadata(again, "job_diff")["northwindlabs"]
    assert (diff["unchanged"], diff["new"], diff["changed"], diff["expired"]) == (6, 0, 0, 0)


def test_a_lever_site_is_paged(instance, sqlite_url, server):
    recorded = [p for skip in (0, 3) for p in json.loads(
        (FIXTURES / "lever" / f"fjordline.skip{skip}.limit3.json").read_bytes())]
    generated = [{"id": f"gen-{i:03d}", "text": f"Engineer {i}", "categories": {"location": "Oslo, Norway"},
                  "hostedUrl": f"https://jobs.lever.co/fjordline/gen-{i:03d}", "createdAt": 1791966097000}
                 for i in range(100)]
    server.set_route(site_path("fjordline", 0), json_reply(generated))
    server.set_route(site_path("fjordline", 100), json_reply(recorded))

    result = sync(instance, sqlite_url, server, ["fjordline"], spec=LEVER)

    assert result.success
    assert [h.path for h in server.hits] == [site_path("fjordline", 0), site_path("fjordline", 100)]
    assert partition_metadata(result, "job_diff", "lever")["fjordline"]["new"] == 105
    assert query(sqlite_url, "select title, location from jobs where external_id = :id",
                 id="58fabc2d-2365-f853-7abd-47eac6b54457") == [("Senior Frontend Engineer", "Remote - US")]
    assert query(sqlite_url, "select count(*), min(source) from jobs where expired_at is null") == [(105, "lever")]


def test_thirty_boards_backfill_in_one_run(instance, store_url, server):
    boards = [f"board-{n:02d}" for n in range(1, 31)]
    for n, board in enumerate(boards, start=1):
        server.set_route(board_path(board), json_reply(board_jobs(board, range(n))))

    result = sync(instance, store_url, server, boards)

    assert result.success
    assert len(instance.get_run_records()) == 1
    assert sorted(h.path for h in server.hits) == sorted(board_path(b) for b in boards)
    per_board = partition_metadata(result, "job_diff")
    assert {b: m["new"] for b, m in per_board.items()} == {b: n for n, b in enumerate(boards, start=1)}
    assert set(partition_metadata(result, "raw_snapshot")) == set(boards)
    assert dict(query(store_url, "select board, count(*) from jobs where expired_at is null group by board")) == \
        {b: n for n, b in enumerate(boards, start=1)}
    assert query(store_url, "select count(distinct run_id), count(*), min(status), max(status) from syncs") == \
        [(1, 30, "success", "success")]


def test_a_missing_board_fails_then_retires_then_comes_back(instance, store_url, server):
    server.set_route(board_path("fadingco"), json_reply(board_jobs("fadingco", range(4))))
    assert sync(instance, store_url, server, ["fadingco"]).success
    server.set_route(board_path("fadingco"), NOT_FOUND)

    first = sync(instance, store_url, server, ["fadingco"])

    assert not first.success
    assert "fadingco" in failure_text(first) and "404" in failure_text(first)
    status, error = run_syncs(store_url, first)["fadingco"]
    assert status == "failed" and "/v1/boards/fadingco/jobs" in error and "404" in error
    assert board_status(store_url, "fadingco") == "failing"
    assert active_jobs(store_url, "fadingco") == 4  # a 404 alone expires nothing

    assert not sync(instance, store_url, server, ["fadingco"]).success
    assert board_status(store_url, "fadingco") == "failing"
    third = sync(instance, store_url, server, ["fadingco"])

    assert not third.success and "board retired" in failure_text(third)
    assert board_status(store_url, "fadingco") == "retired"
    assert run_syncs(store_url, third)["fadingco"][0] == "retired"
    assert query(store_url, "select expired_reason, count(*) from jobs group by expired_reason") == \
        [("board_retired", 4)]

    assert Store(store_url).boards.add("greenhouse", ["fadingco"], origin="cli") == ["fadingco"]
    server.set_route(board_path("fadingco"), json_reply(board_jobs("fadingco", range(1, 5))))
    back = sync(instance, store_url, server, ["fadingco"])

    assert back.success
    assert board_status(store_url, "fadingco") == "active"
    diff = partition_metadata(back, "job_diff")["fadingco"]
    assert (diff["reactivated"], diff["new"]) == (3, 1)
    assert active_jobs(store_url, "fadingco") == 4


def test_a_retired_board_run_again_by_hand_stays_retired(instance, sqlite_url, server):
    """A backfill over every partition includes retired boards: their 404 must not resurrect old jobs."""
    server.set_route(board_path("gone"), json_reply(board_jobs("gone", range(3))))
    server.set_route(board_path("steady"), json_reply(board_jobs("steady", range(2))))
    assert sync(instance, sqlite_url, server, ["gone", "steady"]).success
    server.set_route(board_path("gone"), NOT_FOUND)
    for _ in range(3):
        sync(instance, sqlite_url, server, ["gone"])
    assert board_status(sqlite_url, "gone") == "retired"

    result = sync(instance, sqlite_url, server, ["gone", "steady"])

    assert active_jobs(sqlite_url, "gone") == 0
    assert query(sqlite_url, "select count(*) from job_events where kind = 'reactivated'") == [(0,)]
    assert board_status(sqlite_url, "gone") == "retired"
    syncs = run_syncs(sqlite_url, result)
    assert syncs["steady"][0] == "success"
    assert syncs["gone"][0] != "success" and "404" in syncs["gone"][1]


def test_the_guard_refuses_a_mass_expiry_until_accepted(instance, store_url, server):
    server.set_route(board_path("shrinking"), json_reply(board_jobs("shrinking", range(12))))
    server.set_route(board_path("emptied"), json_reply(board_jobs("emptied", range(100, 112))))
    for _ in range(2):
        assert sync(instance, store_url, server, ["shrinking", "emptied"]).success
    server.set_route(board_path("shrinking"), json_reply(board_jobs("shrinking", range(2))))
    server.set_route(board_path("emptied"), Reply(body=EMPTY_BOARD))

    refused = sync(instance, store_url, server, ["shrinking", "emptied"])

    assert not refused.success
    (check,) = refused.get_asset_check_evaluations()
    assert check.check_name == "mass_expiry_guard" and not check.passed
    assert check.metadata["guarded_boards"].value == 2 and check.metadata["would_expire"].value == 22
    assert active_jobs(store_url, "shrinking") == 12 and active_jobs(store_url, "emptied") == 12
    syncs = run_syncs(store_url, refused)
    assert {b: s for b, (s, _) in syncs.items()} == {"shrinking": "guarded", "emptied": "guarded"}
    assert "lists 2 postings against a median of 12" in syncs["shrinking"][1]
    assert "lists 0 postings" in syncs["emptied"][1] and "accept_shrink" in syncs["emptied"][1]
    assert partition_metadata(refused, "job_diff")["shrinking"]["would_expire"] == 10

    accepted = sync(instance, store_url, server, ["shrinking"], run_config=ACCEPT_SHRINK)

    assert accepted.success
    assert [e.passed for e in accepted.get_asset_check_evaluations()] == [True]
    assert partition_metadata(accepted, "job_diff")["shrinking"]["expired"] == 10
    assert active_jobs(store_url, "shrinking") == 2
    assert query(store_url, "select expired_reason, count(*) from jobs where board = 'shrinking' "
                            "and expired_at is not null group by expired_reason") == [("absent", 10)]
    assert active_jobs(store_url, "emptied") == 12  # accepting one board's shrink accepts no other
    assert not sync(instance, store_url, server, ["emptied"]).success
    assert active_jobs(store_url, "emptied") == 12


def test_one_failing_board_leaves_the_others_of_its_run_alone(instance, store_url, server):
    boards = ["alpha", "missing", "broken", "omega"]
    for board in boards:
        server.set_route(board_path(board), json_reply(board_jobs(board, range(12))))
    assert sync(instance, store_url, server, boards).success
    server.set_route(board_path("alpha"), json_reply(board_jobs("alpha", range(1, 13))))
    server.set_route(board_path("missing"), NOT_FOUND)
    server.set_route(board_path("broken"), HTML_PAGE)  # an error page served with status 200
    server.set_route(board_path("omega"), json_reply(board_jobs("omega", range(14))))

    result = sync(instance, store_url, server, boards)

    assert not result.success
    failure = failure_text(result)
    assert "2 board(s) did not sync" in failure and "- missing:" in failure and "- broken:" in failure
    syncs = run_syncs(store_url, result)
    assert {b: s for b, (s, _) in syncs.items()} == \
        {"alpha": "success", "missing": "failed", "broken": "failed", "omega": "success"}
    assert "/v1/boards/broken/jobs" in syncs["broken"][1] and "not valid JSON" in syncs["broken"][1]
    assert active_jobs(store_url, "broken") == 12 and active_jobs(store_url, "missing") == 12
    assert active_jobs(store_url, "alpha") == 12 and active_jobs(store_url, "omega") == 14
    assert query(store_url, "select board, count(*) from jobs where expired_at is not null group by board") == \
        [("alpha", 1)]
    assert [board_status(store_url, b) for b in boards] == ["active", "failing", "active", "active"]
    assert partition_metadata(result, "raw_snapshot")["missing"]["failed"] == 1
    assert partition_metadata(result, "postings")["broken"]["failed"] == 1
