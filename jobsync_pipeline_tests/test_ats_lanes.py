"""The Greenhouse and Lever lanes materialized in-process against a local server and a real store."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from jobsync_pipeline.core.models import Posting, postings_frame
from jobsync_pipeline.defs.lanes import build_source_lane
from jobsync_pipeline.defs.run_tags import range_tags
from jobsync_pipeline.defs.resources import HttpResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.source_specs import GREENHOUSE, LEVER, SourceSpec
from jobsync_pipeline.store import Store
from jobsync_pipeline.store.apply import Expiry
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply
from jobsync_pipeline_tests.lane_helpers import query

GREENHOUSE_LANE = build_source_lane(GREENHOUSE)
LEVER_LANE = build_source_lane(LEVER)
LANES = {GREENHOUSE.name: GREENHOUSE_LANE, LEVER.name: LEVER_LANE}
LARKFIELD = (FIXTURES / "greenhouse" / "larkfieldhealth.jobs.json").read_bytes()
EMPTY_BOARD = (FIXTURES / "greenhouse" / "stillwater.jobs.json").read_bytes()
NOT_FOUND = Reply(status=404, body=(FIXTURES / "greenhouse" / "unknown_board.jobs.404.json").read_bytes())
HTML_PAGE = Reply(body=b"<html><body><h1>We'll be right back</h1></body></html>",
                  headers={"Content-Type": "text/html"})
ACCEPT_SHRINK = {"ops": {"greenhouse__job_diff": {"config": {"accept_shrink": True}}}}


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:  # disposed: its temporary folder is removed
        yield instance


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


def run_check_evaluations(instance: dg.DagsterInstance,
                          result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    """The run's check evaluations as the instance stored them (a failed step's too)."""
    records = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return [r.dagster_event.event_specific_data for r in records]


def run_materializations(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult,
                         stage: str = "job_diff", source: str = "greenhouse") -> dict[str, dict]:
    """Each partition's materialization of the stage in the run, as the instance stored it."""
    records = instance.fetch_materializations(dg.AssetKey([source, stage]), limit=1000).records
    return {r.partition_key: {k: v.value for k, v in r.asset_materialization.metadata.items()}
            for r in records if r.run_id == result.run_id}


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
    server.set_route(board_path("larkfieldhealth"), Reply(body=LARKFIELD, etag='"v1"'))

    result = sync(instance, store_url, server, ["larkfieldhealth"])

    assert result.success
    jobs = dict((e, (t, loc, c)) for e, t, loc, c in query(
        store_url, "select external_id, title, location, company from jobs where expired_at is null"))
    assert len(jobs) == 6
    assert jobs["5120344"] == ("Clinical Data Engineer", "Amsterdam, Netherlands", "Larkfield Health")
    assert jobs["5120358"][0] == "Quality & Compliance Specialist"
    assert jobs["5120377"][1] == "Düsseldorf, Deutschland"
    assert partition_metadata(result, "raw_snapshot")["larkfieldhealth"]["not_modified"] == 0
    diff = partition_metadata(result, "job_diff")["larkfieldhealth"]
    assert (diff["found"], diff["new"], diff["expired"]) == (6, 6, 0)
    checks = {(e.asset_key.path[-1], e.check_name): e for e in run_check_evaluations(instance, result)}
    assert {k: (e.partition, e.passed) for k, e in checks.items()} == {
        ("raw_snapshot", "board_outcome"): ("larkfieldhealth", True),
        ("postings", "board_outcome"): ("larkfieldhealth", True),
        ("job_diff", "board_outcome"): ("larkfieldhealth", True),
        ("job_diff", "mass_expiry_guard"): ("larkfieldhealth", True)}
    assert checks["job_diff", "board_outcome"].description.startswith("synced: 6 found, 6 new")
    assert query(store_url, "select status, found, new from syncs") == [("success", 6, 6)]
    assert board_status(store_url, "larkfieldhealth") == "active"


def test_a_job_another_source_lists_too_is_counted_as_a_cross_source_duplicate(instance, store_url, server):
    # job_diff reads whether another source has boards once per batch of boards, not per board
    server.set_route(board_path("acme"), json_reply(board_jobs("acme", [1, 2])))
    server.set_route(board_path("globex"), json_reply(board_jobs("globex", [1])))
    first = sync(instance, store_url, server, ["acme"])
    assert partition_metadata(first, "job_diff")["acme"]["cross_source_duplicates"] == 0  # no other source yet
    store = Store(store_url)
    store.ensure_boards("remoteok", ["all"])
    feed = Posting(source="remoteok", board="all", external_id="r1", title="globex role 1", company="Globex",
                   location="City 1")
    store.apply_snapshot("remoteok", "all", [postings_frame([feed])],
                         sync_id=store.start_sync("remoteok", "all", run_id=None),
                         expiry=Expiry(complete=False, max_age=timedelta(days=30)))
    second = sync(instance, store_url, server, ["acme", "globex"])
    assert second.success
    duplicates = {board: numbers["cross_source_duplicates"]
                  for board, numbers in partition_metadata(second, "job_diff").items()}
    assert duplicates == {"acme": 0, "globex": 1}  # acme wrote nothing this time: nothing of it to compare
    assert query(store_url, "select cross_source_duplicates from syncs where board = 'globex'") == [(1,)]


def test_an_unchanged_board_answers_304_and_writes_nothing(instance, sqlite_url, server):
    server.set_route(board_path("larkfieldhealth"), Reply(body=LARKFIELD, etag='W/"v1"'))
    assert sync(instance, sqlite_url, server, ["larkfieldhealth"]).success
    before = query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id")

    again = sync(instance, sqlite_url, server, ["larkfieldhealth"])

    assert again.success
    assert server.hits[-1].headers["if-none-match"] == 'W/"v1"' and server.hits[-1].status == 304
    assert query(sqlite_url, "select count(*) from raw_snapshots") == [(1,)]
    assert query(sqlite_url, "select id, updated_at, last_seen_at from jobs order by id") == before
    raw = partition_metadata(again, "raw_snapshot")["larkfieldhealth"]
    assert (raw["not_modified"], raw["identical_payload"], raw["bytes"]) == (1, 1, 0)
    diff = partition_metadata(again, "job_diff")["larkfieldhealth"]
    assert (diff["unchanged"], diff["new"], diff["changed"], diff["expired"]) == (6, 0, 0, 0)


def test_a_lever_site_is_paged(instance, sqlite_url, server):
    recorded = [p for skip in (0, 3, 6) for p in json.loads(
        (FIXTURES / "lever" / f"saltmarsh.skip{skip}.limit3.json").read_bytes())]
    generated = [{"id": f"gen-{i:03d}", "text": f"Engineer {i}", "categories": {"location": "Oslo, Norway"},
                  "hostedUrl": f"https://jobs.lever.co/saltmarsh/gen-{i:03d}", "createdAt": 1791465697000}
                 for i in range(100)]
    server.set_route(site_path("saltmarsh", 0), json_reply(generated))
    server.set_route(site_path("saltmarsh", 100), json_reply(recorded))

    result = sync(instance, sqlite_url, server, ["saltmarsh"], spec=LEVER)

    assert result.success
    assert [h.path for h in server.hits] == [site_path("saltmarsh", 0), site_path("saltmarsh", 100)]
    assert partition_metadata(result, "job_diff", "lever")["saltmarsh"]["new"] == 107
    assert query(sqlite_url, "select title, location from jobs where external_id = :id",
                 id="7bfc6225-8439-4401-9e9c-45b3f103a7eb") == [("Senior Data Scientist", "Remote - Canada")]
    assert query(sqlite_url, "select count(*), min(source) from jobs where expired_at is null") == [(107, "lever")]


def test_a_lever_site_takes_its_company_name_from_the_registry(instance, store_url, server):
    page = json.loads((FIXTURES / "recorded" / "lever" / "palantir.postings.subset10.json").read_bytes())
    server.set_route(site_path("palantir", 0), json_reply(page))
    Store(store_url).boards.add("lever", ["palantir"], "cli", display_names={"palantir": "Palantir Technologies"})

    result = sync(instance, store_url, server, ["palantir"], spec=LEVER)

    assert result.success
    assert query(store_url, "select distinct company, company_key from jobs") == [
        ("Palantir Technologies", "palantir")]  # "Technologies" goes like a legal form
    rows = query(store_url, "select salary_source, salary_annual_min, salary_annual_max, salary_period_basis "
                            "from jobs where salary_source is not null")
    # read from the closing section: "$60,000 - $97,000/year", "$28/hour to $47/hour" (× 2,080), …
    assert len(rows) == 7 and set(rows) == {("additional", 60000.0, 97000.0, "text"),
                                            ("additional", 28 * 2080.0, 47 * 2080.0, "text"),
                                            ("additional", 135000.0, 200000.0, "text")}


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


def guard_checks(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    """Each board's mass_expiry_guard evaluation in the run, as the instance recorded it."""
    return {e.partition: (e.passed, e.description) for e in run_check_evaluations(instance, result)
            if e.check_name == "mass_expiry_guard"}


def test_the_guard_refuses_a_mass_expiry_until_accepted(instance, store_url, server):
    server.set_route(board_path("shrinking"), json_reply(board_jobs("shrinking", range(12))))
    server.set_route(board_path("steady"), json_reply(board_jobs("steady", range(100, 112))))
    for _ in range(2):
        assert sync(instance, store_url, server, ["shrinking", "steady"]).success
    server.set_route(board_path("shrinking"), json_reply(board_jobs("shrinking", range(2))))

    refused = sync(instance, store_url, server, ["shrinking", "steady"])

    assert not refused.success
    assert "shrinking: guarded" in failure_text(refused) and "steady" not in failure_text(refused)
    checks = guard_checks(instance, refused)
    assert checks["shrinking"][0] is False and "lists 2 postings against a median of 12" in checks["shrinking"][1]
    assert checks["steady"] == (True, "nothing to hold back")
    assert active_jobs(store_url, "shrinking") == 12
    syncs = run_syncs(store_url, refused)
    assert {b: s for b, (s, _) in syncs.items()} == {"shrinking": "guarded", "steady": "success"}
    assert query(store_url, "select expiry_guard from syncs where run_id = :run and board = 'shrinking'",
                 run=refused.run_id) == [("refused",)]
    assert set(run_materializations(instance, refused)) == {"steady"}  # nothing applied, nothing materialized

    other = sync(instance, store_url, server, ["steady"])  # a later run over other boards
    assert other.success and set(guard_checks(instance, other)) == {"steady"}

    accepted = sync(instance, store_url, server, ["shrinking"], run_config=ACCEPT_SHRINK)

    assert accepted.success
    assert guard_checks(instance, accepted) == {"shrinking": (True, "accepted: applied")}
    assert partition_metadata(accepted, "job_diff")["shrinking"]["expired"] == 10
    assert active_jobs(store_url, "shrinking") == 2
    assert query(store_url, "select expired_reason, count(*) from jobs where board = 'shrinking' "
                            "and expired_at is not null group by expired_reason") == [("absent", 10)]
    assert query(store_url, "select expiry_guard from syncs where run_id = :run", run=accepted.run_id) == \
        [("accepted",)]


def test_an_empty_answer_expires_nothing_until_confirmed_hours_later(instance, store_url, server):
    server.set_route(board_path("tiny"), json_reply(board_jobs("tiny", range(5))))
    server.set_route(board_path("shrunk"), json_reply(board_jobs("shrunk", range(5))))
    assert sync(instance, store_url, server, ["tiny", "shrunk"]).success
    server.set_route(board_path("tiny"), Reply(body=EMPTY_BOARD))
    server.set_route(board_path("shrunk"), json_reply(board_jobs("shrunk", range(2))))

    first = sync(instance, store_url, server, ["tiny", "shrunk"])

    assert not first.success and "tiny: guarded" in failure_text(first)
    assert active_jobs(store_url, "tiny") == 5  # one empty answer is not a closed board
    assert active_jobs(store_url, "shrunk") == 2  # a small board that really shrank expires at once
    assert "answered with no postings for the first time" in guard_checks(instance, first)["tiny"][1]
    assert not sync(instance, store_url, server, ["tiny"]).success  # still empty, but too soon
    assert active_jobs(store_url, "tiny") == 5

    with Store(store_url).engine.begin() as conn:  # the first empty answer was seven hours ago
        conn.execute(sa.text("update syncs set started_at = :at where board = 'tiny' and expiry_guard = 'empty_held'"),
                     {"at": datetime.now(timezone.utc) - timedelta(hours=7)})
    confirmed = sync(instance, store_url, server, ["tiny"])

    assert confirmed.success
    assert active_jobs(store_url, "tiny") == 0
    assert guard_checks(instance, confirmed) == {"tiny": (True, "empty_confirmed: applied")}
    assert query(store_url, "select status, expiry_guard, expired from syncs where run_id = :run",
                 run=confirmed.run_id) == [("success", "empty_confirmed", 5)]


def test_an_operator_accepts_an_empty_board_at_once(instance, sqlite_url, server):
    server.set_route(board_path("closing"), json_reply(board_jobs("closing", range(5))))
    assert sync(instance, sqlite_url, server, ["closing"]).success
    server.set_route(board_path("closing"), Reply(body=EMPTY_BOARD))
    assert not sync(instance, sqlite_url, server, ["closing"]).success
    assert sync(instance, sqlite_url, server, ["closing"], run_config=ACCEPT_SHRINK).success
    assert active_jobs(sqlite_url, "closing") == 0
    assert query(sqlite_url, "select status, expiry_guard from syncs order by id") == \
        [("success", None), ("guarded", "empty_held"), ("success", "accepted")]


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


def test_a_run_of_three_boards_records_each_outcome_on_its_own_partition(store_url, server):
    """One applied, one failing (404), one refused by the guard: what the UI shows, read from the instance."""
    with dg.instance_for_test() as instance:
        for board, ids in (("applied", range(12)), ("vanished", range(12)), ("gutted", range(12))):
            server.set_route(board_path(board), json_reply(board_jobs(board, ids)))
        for _ in range(2):
            assert sync(instance, store_url, server, ["applied", "vanished", "gutted"]).success
        server.set_route(board_path("applied"), json_reply(board_jobs("applied", range(1, 14))))
        server.set_route(board_path("vanished"), NOT_FOUND)
        server.set_route(board_path("gutted"), json_reply(board_jobs("gutted", range(3))))

        result = sync(instance, store_url, server, ["applied", "vanished", "gutted"])

        assert not result.success
        failure = failure_text(result)
        assert "2 board(s) did not sync" in failure and "- vanished: failed" in failure and "- gutted: guarded" in failure
        job_diff = dg.AssetKey(["greenhouse", "job_diff"])
        statuses = instance.get_status_by_partition(job_diff, ["applied", "vanished", "gutted"],
                                                    GREENHOUSE.partitions_def())
        assert statuses == {"applied": dg.AssetPartitionStatus.MATERIALIZED,
                            "vanished": dg.AssetPartitionStatus.FAILED, "gutted": dg.AssetPartitionStatus.FAILED}
        diff = run_materializations(instance, result)
        assert set(diff) == {"applied"}
        assert {k: diff["applied"][k] for k in ("found", "new", "changed", "unchanged", "expired", "reactivated")} \
            == {"found": 13, "new": 2, "changed": 0, "unchanged": 11, "expired": 1, "reactivated": 0}

        def check_status(stage: str, check: str) -> dict[str, str]:
            infos = instance.event_log_storage.get_asset_check_partition_info(
                [dg.AssetCheckKey(dg.AssetKey(["greenhouse", stage]), check)])
            return {i.partition_key: i.latest_execution_status.value for i in infos}

        assert check_status("job_diff", "board_outcome") == \
            {"applied": "SUCCEEDED", "vanished": "FAILED", "gutted": "FAILED"}
        assert check_status("job_diff", "mass_expiry_guard") == \
            {"applied": "SUCCEEDED", "vanished": "SUCCEEDED", "gutted": "FAILED"}  # never ran ≠ failed
        assert check_status("raw_snapshot", "board_outcome") == \
            {"applied": "SUCCEEDED", "vanished": "FAILED", "gutted": "SUCCEEDED"}
        outcomes = {e.partition: e.description for e in run_check_evaluations(instance, result)
                    if e.check_name == "board_outcome" and e.asset_key == job_diff}
        assert "404" in outcomes["vanished"] and "median of 12" in outcomes["gutted"]
        assert outcomes["applied"].startswith("synced: 13 found, 2 new")

        # a later run over another board leaves the refused board's guard red and the failed one failed
        assert sync(instance, store_url, server, ["applied"]).success
        assert check_status("job_diff", "mass_expiry_guard")["gutted"] == "FAILED"
        assert instance.get_status_by_partition(job_diff, ["vanished"], GREENHOUSE.partitions_def()) == \
            {"vanished": dg.AssetPartitionStatus.FAILED}


def test_a_run_whose_every_board_failed_is_a_failed_run(instance, sqlite_url, server):
    for board in ("gone-1", "gone-2"):
        server.set_route(board_path(board), NOT_FOUND)
    result = sync(instance, sqlite_url, server, ["gone-1", "gone-2"])
    assert not result.success
    assert "2 board(s) did not sync" in failure_text(result)
    outcomes = {(e.asset_key.path[-1], e.partition): e.passed for e in run_check_evaluations(instance, result)
                if e.check_name == "board_outcome"}
    assert outcomes == {(stage, board): False for stage in ("raw_snapshot", "postings", "job_diff")
                        for board in ("gone-1", "gone-2")}


def test_a_board_whose_fetch_failed_has_every_check_evaluated_not_left_planned(sqlite_url, server):
    server.set_route(board_path("gone"), NOT_FOUND)
    with dg.instance_for_test() as instance:
        result = sync(instance, sqlite_url, server, ["gone"])
        assert not result.success
        statuses = {}
        for stage, check in (("raw_snapshot", "board_outcome"), ("postings", "board_outcome"),
                             ("job_diff", "board_outcome"), ("job_diff", "mass_expiry_guard")):
            (info,) = instance.event_log_storage.get_asset_check_partition_info(
                [dg.AssetCheckKey(dg.AssetKey(["greenhouse", stage]), check)])
            statuses[stage, check] = (info.partition_key, info.latest_execution_status.value)
        assert statuses == {("raw_snapshot", "board_outcome"): ("gone", "FAILED"),
                            ("postings", "board_outcome"): ("gone", "FAILED"),
                            ("job_diff", "board_outcome"): ("gone", "FAILED"),
                            ("job_diff", "mass_expiry_guard"): ("gone", "SUCCEEDED")}
        assert instance.get_status_by_partition(dg.AssetKey(["greenhouse", "job_diff"]), ["gone"],
                                                GREENHOUSE.partitions_def()) == {"gone": dg.AssetPartitionStatus.FAILED}


def test_a_board_redirected_to_another_host_fails_and_expires_nothing(instance, store_url, server):
    boards = ["alpha", "moved"]
    for board in boards:
        server.set_route(board_path(board), json_reply(board_jobs(board, range(12))))
    assert sync(instance, store_url, server, boards).success
    with LocalServer({"/v1/boards/moved/jobs": json_reply(board_jobs("impostor", range(100, 103)))}) as elsewhere:
        server.set_route(board_path("moved"), Reply(302, headers={"Location": elsewhere.url(board_path("moved"))}))

        result = sync(instance, store_url, server, boards)

        assert elsewhere.count() == 0
    assert not result.success
    assert "1 board(s) did not sync" in failure_text(result) and "- moved:" in failure_text(result)
    syncs = run_syncs(store_url, result)
    assert {b: s for b, (s, _) in syncs.items()} == {"alpha": "success", "moved": "failed"}
    assert elsewhere.base_url in syncs["moved"][1] and "may not leave the API host" in syncs["moved"][1]
    assert active_jobs(store_url, "moved") == 12 and active_jobs(store_url, "alpha") == 12
    assert query(store_url, "select count(*) from jobs where expired_at is not null")[0][0] == 0


# --- a large run: routine passes left out of the checks, Dagster's events batched -----------------------------

@pytest.fixture
def large_run(monkeypatch):
    """Runs of more than one board count as large (ROUTINE_OUTCOMES_UP_TO is 100 in the product)."""
    from jobsync_pipeline.defs import lanes
    monkeypatch.setattr(lanes, "ROUTINE_OUTCOMES_UP_TO", 1)


def test_a_large_run_logs_only_the_outcomes_that_say_something(instance, store_url, server, large_run):
    ids = range(100, 112)
    for board in ("alpha", "bravo", "charlie"):
        server.set_route(board_path(board), json_reply(board_jobs(board, ids)))
    first = sync(instance, store_url, server, ["alpha", "bravo", "charlie"])
    assert first.success
    # never synced before and synced plainly: the materializations say it, no check event per board
    assert run_check_evaluations(instance, first) == []
    assert set(run_materializations(instance, first)) == {"alpha", "bravo", "charlie"}
    assert set(partition_metadata(first, "postings")) == {"alpha", "bravo", "charlie"}
    assert partition_metadata(first, "postings")["bravo"]["found"] == 12

    # bravo fails: the run fails, so every outcome is logged (a check planned in a failed run and never
    # evaluated would show as an execution failure), bravo's failed
    server.set_route(board_path("bravo"), HTML_PAGE)
    second = sync(instance, store_url, server, ["alpha", "bravo", "charlie"])
    assert not second.success
    outcomes = {(e.asset_key.path[-1], e.check_name, e.partition): e.passed
                for e in run_check_evaluations(instance, second)}
    assert {k for k, passed in outcomes.items() if not passed} == {
        ("postings", "board_outcome", "bravo"), ("job_diff", "board_outcome", "bravo")}
    for stage in ("raw_snapshot", "postings", "job_diff"):
        assert outcomes[stage, "board_outcome", "alpha"] and outcomes[stage, "board_outcome", "charlie"]
    assert instance.get_status_by_partition(dg.AssetKey(["greenhouse", "job_diff"]), ["alpha", "bravo"],
                                            GREENHOUSE.partitions_def()) == {
        "alpha": dg.AssetPartitionStatus.MATERIALIZED, "bravo": dg.AssetPartitionStatus.FAILED}

    # all well again: only bravo, recovering, has its passes logged (its checks turn back to passed)
    server.set_route(board_path("bravo"), json_reply(board_jobs("bravo", ids)))
    third = sync(instance, store_url, server, ["alpha", "bravo", "charlie"])
    assert third.success
    logged = {(e.asset_key.path[-1], e.check_name, e.partition, e.passed) for e in run_check_evaluations(instance, third)}
    assert logged == {(stage, "board_outcome", "bravo", True) for stage in ("raw_snapshot", "postings", "job_diff")} | {
        ("job_diff", "mass_expiry_guard", "bravo", True)}


def test_a_large_run_logs_bad_records_and_the_guard_whatever_came_before(instance, store_url, server, large_run):
    server.set_route(board_path("steady"), json_reply(board_jobs("steady", range(1, 13))))
    server.set_route(board_path("sloppy"), json_reply(board_jobs("sloppy", range(1, 13))))
    assert sync(instance, store_url, server, ["sloppy", "steady"]).success
    broken = board_jobs("sloppy", range(1, 13))
    broken["jobs"][0]["title"] = None  # refused, kept aside: a warning on the board's parse
    server.set_route(board_path("sloppy"), json_reply(broken))
    server.set_route(board_path("steady"), json_reply(board_jobs("steady", range(1, 3))))  # 12 -> 2: held back
    result = sync(instance, store_url, server, ["sloppy", "steady"])
    logged = {(e.asset_key.path[-1], e.check_name, e.partition): (e.passed, e.severity)
              for e in run_check_evaluations(instance, result)}
    assert logged["postings", "board_outcome", "sloppy"] == (False, dg.AssetCheckSeverity.WARN)
    assert logged["job_diff", "mass_expiry_guard", "steady"][0] is False
    assert logged["job_diff", "board_outcome", "steady"][0] is False
