"""Discovery: probing candidates against a local server, the asset on real stores, the board sensor."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa

from jobsync_pipeline.defs import discovery
from jobsync_pipeline.defs.discovery import (CANDIDATES_FILE, DiscoveryConfig, build_board_sensor,
                                             discovered_boards, discovery_probe, probe_candidates, read_candidates)
from jobsync_pipeline.defs.resources import HttpResource, StoreResource
from jobsync_pipeline.sources.greenhouse import GreenhouseConnector
from jobsync_pipeline.sources.http import HttpPolicy, PoliteClient
from jobsync_pipeline.sources.lever import LeverConnector
from jobsync_pipeline.store.boards import BoardRegistry
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import boards, jobs, potential_companies
from jobsync_pipeline_tests.conftest import FIXTURES
from jobsync_pipeline_tests.http_server import LocalServer, Reply

LONG_AGO = datetime(2026, 1, 1, tzinfo=timezone.utc)
MONTH = timedelta(days=30)
LARKFIELD = "/v1/boards/larkfieldhealth/jobs"
STORMY = "/v1/boards/stormysystems/jobs"
ROUTES = {
    LARKFIELD: Reply(body=(FIXTURES / "greenhouse" / "larkfieldhealth.jobs.json").read_bytes()),
    "/v1/boards/stillwater/jobs": Reply(body=(FIXTURES / "greenhouse" / "stillwater.jobs.json").read_bytes()),
    "/v0/postings/saltmarsh": Reply(body=(FIXTURES / "lever" / "saltmarsh.skip0.limit3.json").read_bytes()),
    STORMY: Reply(status=500, body=b'{"error": "boom"}'),  # always: an outage, not an answer
}


@pytest.fixture
def server():
    with LocalServer(ROUTES) as server:
        yield server


@pytest.fixture
def connectors(server):
    # two attempts, no backoff wait: a 500-always host costs two quick requests
    policy = HttpPolicy(requests_per_second=None, max_attempts=2)
    with PoliteClient(policy, random=lambda: 0.0, sleep=lambda seconds: None) as client:
        yield {"greenhouse": GreenhouseConnector(client, base_url=server.base_url),
               "lever": LeverConnector(client, base_url=server.base_url)}


def registry_for(url: str) -> BoardRegistry:
    return BoardRegistry(Store(url).engine)


def probes(registry: BoardRegistry) -> dict[str, tuple[str, str]]:
    with registry.engine.connect() as conn:
        return {r.name: (r.probe_status, r.probe_result) for r in conn.execute(sa.select(potential_companies))}


def board_rows(registry: BoardRegistry) -> dict[tuple[str, str], tuple[str, str]]:
    with registry.engine.connect() as conn:
        return {(r.source, r.board): (r.status, r.origin) for r in conn.execute(sa.select(boards))}


def retire_long_ago(registry: BoardRegistry, source: str, board: str) -> None:
    registry.add(source, [board], origin="cli")
    registry.remove(source, board, "gone")
    with registry.engine.begin() as conn:
        conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board)
                     .values(status_changed_at=LONG_AGO, last_synced_at=LONG_AGO))


def seed_postings(url: str, source: str, company: str) -> None:
    now = datetime.now(timezone.utc)
    with Store(url).engine.begin() as conn:
        conn.execute(jobs.insert().values(
            source=source, board=company.lower().replace(" ", "-"), external_id="1", title="Engineer",
            company=company, location="Remote", url="", description="", requirements="[]", content_hash=1,
            first_seen_at=now, last_seen_at=now, updated_at=now))


# --- probing ------------------------------------------------------------------------------------

def test_probing_finds_boards_and_records_every_answer(sqlite_url, connectors, server):
    registry = registry_for(sqlite_url)
    registry.add_candidates(["Larkfield Health", "Saltmarsh", "Unheard Of Widgets", "Stormy Systems"], origin="cli")

    stats = probe_candidates(registry, connectors, batch_size=10, reprobe_after=MONTH)

    assert (stats.probed, stats.found, stats.not_found, stats.errors) == (4, 2, 1, 1)
    assert stats.boards_added == ["greenhouse:larkfieldhealth", "lever:saltmarsh"]
    assert board_rows(registry) == {("greenhouse", "larkfieldhealth"): ("active", "discovery"),
                                    ("lever", "saltmarsh"): ("active", "discovery")}
    # the name discovery looked for is the board's company name (Lever's postings name none)
    assert registry.display_name("lever", "saltmarsh") == "Saltmarsh"
    assert registry.display_name("greenhouse", "larkfieldhealth") == "Larkfield Health"
    answers = probes(registry)
    assert answers["Larkfield Health"] == ("found", "greenhouse:larkfieldhealth")
    assert answers["Saltmarsh"] == ("found", "lever:saltmarsh")
    assert answers["Unheard Of Widgets"][0] == "not_found"
    assert "unheardofwidgets" in answers["Unheard Of Widgets"][1]
    status, result = answers["Stormy Systems"]
    assert status == "error" and "greenhouse/stormysystems" in result and "500" in result
    # the first token that answers ends the search on that source; an outage ends it too
    assert server.count(path=LARKFIELD + "?content=true") == 1
    assert server.count(path="/v1/boards/larkfield-health/jobs?content=true") == 0
    assert server.count(path=STORMY + "?content=true") == 2  # max_attempts, then recorded, batch goes on
    assert server.count(path="/v1/boards/stormy-systems/jobs?content=true") == 0


def test_a_found_candidate_is_never_probed_again(sqlite_url, connectors, server):
    registry = registry_for(sqlite_url)
    registry.add_candidates(["Larkfield Health", "Unheard Of Widgets"], origin="file")
    probe_candidates(registry, connectors, batch_size=10, reprobe_after=MONTH)

    assert probe_candidates(registry, connectors, batch_size=10, reprobe_after=MONTH).probed == 0
    again = probe_candidates(registry, connectors, batch_size=10, reprobe_after=timedelta(0))

    assert (again.probed, again.not_found, again.found) == (1, 1, 0)  # only the one with no board
    assert server.count(path=LARKFIELD + "?content=true") == 1


def test_candidates_are_probed_a_batch_at_a_time(sqlite_url, connectors):
    registry = registry_for(sqlite_url)
    registry.add_candidates(["Alpha Co", "Bravo", "Charlie", "Delta", "Echo"], origin="file")
    assert probe_candidates(registry, connectors, batch_size=2, reprobe_after=MONTH).probed == 2
    assert probe_candidates(registry, connectors, batch_size=2, reprobe_after=MONTH).probed == 2
    assert probe_candidates(registry, connectors, batch_size=2, reprobe_after=MONTH).probed == 1
    assert {status for status, _ in probes(registry).values()} == {"not_found"}


def test_a_retired_board_that_answers_is_revived(sqlite_url, connectors, server):
    registry = registry_for(sqlite_url)
    retire_long_ago(registry, "greenhouse", "stillwater")  # empty board: a 200 all the same
    retire_long_ago(registry, "greenhouse", "gonecorp")
    retire_long_ago(registry, "lever", "saltmarsh")
    registry.remove("greenhouse", "justretired", "gone")

    stats = probe_candidates(registry, connectors, batch_size=10, reprobe_after=MONTH, retired_reprobe_after=MONTH)

    assert stats.revived == 2 and stats.probed == 0
    assert sorted(stats.boards_added) == ["greenhouse:stillwater", "lever:saltmarsh"]
    assert sorted(registry.syncable("greenhouse")) == ["stillwater"]
    assert registry.syncable("lever") == ["saltmarsh"]
    assert server.count(path="/v1/boards/justretired/jobs?content=true") == 0  # not due yet
    # still gone: asked again only after another month, not every tick
    probe_candidates(registry, connectors, batch_size=10, reprobe_after=MONTH, retired_reprobe_after=MONTH)
    assert server.count(path="/v1/boards/gonecorp/jobs?content=true") == 1


def test_shipped_candidates_file_is_names_with_a_comment_header(tmp_path):
    names = read_candidates(CANDIDATES_FILE)
    assert 20 <= len(names) <= 50 and "Stripe" in names and len(set(names)) == len(names)
    assert CANDIDATES_FILE.read_text().startswith("#")
    other = tmp_path / "candidates.txt"
    other.write_text("# header\n\n  Acme Inc  \n# Globex\nInitech\n")
    assert read_candidates(other) == ["Acme Inc", "Initech"]
    assert read_candidates(tmp_path / "missing.txt") == []


# --- the asset ----------------------------------------------------------------------------------

def materialize_discovery(store_url: str, server: LocalServer, **config) -> dg.ExecuteInProcessResult:
    http = HttpResource(greenhouse_base_url=server.base_url, lever_base_url=server.base_url,
                        requests_per_second=1000, max_attempts=2)
    return dg.materialize(
        [discovered_boards], resources={"store": StoreResource(url=store_url), "http": http},
        run_config=dg.RunConfig(ops={"discovery__discovered_boards": DiscoveryConfig(**config)}))


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    (mat,) = result.asset_materializations_for_node("discovery__discovered_boards")
    return {key: value.value for key, value in mat.metadata.items()}


def test_the_asset_adds_candidates_probes_a_batch_and_reports_numbers(store_url, server):
    seed_postings(store_url, "company_files", "Larkfield Health")
    seed_postings(store_url, "himalayas", "Saltmarsh")
    seed_postings(store_url, "greenhouse", "Not A Candidate")  # an ATS board's own postings are not candidates
    retire_long_ago(registry_for(store_url), "greenhouse", "stillwater")
    shipped = len(read_candidates(CANDIDATES_FILE))

    first = materialize_discovery(store_url, server, batch_size=500)

    assert first.success
    numbers = metadata(first)
    assert {k: numbers[k] for k in ("candidates_added", "probed", "found", "not_found", "errors", "revived")} == \
        {"candidates_added": shipped + 2, "probed": shipped + 2, "found": 2, "not_found": shipped, "errors": 0,
         "revived": 1}
    assert isinstance(numbers["duration_seconds"], float) and numbers["duration_seconds"] >= 0
    assert sorted(numbers["new_boards"]) == ["greenhouse:larkfieldhealth", "greenhouse:stillwater",
                                             "lever:saltmarsh"]
    registry = registry_for(store_url)
    assert sorted(registry.syncable("greenhouse")) == ["larkfieldhealth", "stillwater"]
    with registry.engine.connect() as conn:
        origins = dict(conn.execute(sa.select(potential_companies.c.name, potential_companies.c.origin)).all())
    assert origins["Larkfield Health"] == "postings" and origins["Stripe"] == "file"
    assert "Not A Candidate" not in origins

    again = metadata(materialize_discovery(store_url, server, batch_size=500))
    assert {k: again[k] for k in ("candidates_added", "probed", "found", "revived")} == \
        {"candidates_added": 0, "probed": 0, "found": 0, "revived": 0}


def test_the_asset_probes_only_its_batch(sqlite_url, server):
    numbers = metadata(materialize_discovery(sqlite_url, server, batch_size=3))
    assert numbers["probed"] == 3 and numbers["candidates_added"] == len(read_candidates(CANDIDATES_FILE))


# --- the board sensor ---------------------------------------------------------------------------

GREENHOUSE_BOARDS = dg.DynamicPartitionsDefinition(name="greenhouse_boards")


@dg.asset(key_prefix=["greenhouse"], partitions_def=GREENHOUSE_BOARDS)
def raw_snapshot() -> None:
    """A stand-in for the lane's first asset."""


GREENHOUSE_JOB = dg.define_asset_job("greenhouse_sync", selection=[raw_snapshot])
SENSOR = build_board_sensor("greenhouse", GREENHOUSE_BOARDS, GREENHOUSE_JOB)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tick(instance: dg.DagsterInstance, store_url: str, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"store": StoreResource(url=store_url)})
    result = SENSOR(context)
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
        else:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_the_board_sensor_adds_only_new_syncable_boards(instance, store_url):
    registry = registry_for(store_url)
    registry.add("greenhouse", ["acme", "globex"], origin="cli")
    registry.add("greenhouse", ["oldco"], origin="cli")
    registry.remove("greenhouse", "oldco", "gone")
    registry.add("lever", ["fjordline"], origin="discovery")
    instance.add_dynamic_partitions("greenhouse_boards", ["acme"])  # added earlier, by hand or the CLI

    first = tick(instance, store_url)

    (request,) = first.dynamic_partitions_requests
    assert request.partitions_def_name == "greenhouse_boards" and list(request.partition_keys) == ["globex"]
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [("globex", "greenhouse:globex:added")]
    assert json.loads(first.cursor) == {"boards": 2}

    unchanged = tick(instance, store_url, cursor=first.cursor)
    assert unchanged.run_requests == [] and not unchanged.dynamic_partitions_requests
    assert unchanged.cursor == first.cursor

    registry.add("greenhouse", ["initech"], origin="discovery")
    later = tick(instance, store_url, cursor=unchanged.cursor)
    assert [r.run_key for r in later.run_requests] == ["greenhouse:initech:added"]
    assert sorted(instance.get_dynamic_partitions("greenhouse_boards")) == ["acme", "globex", "initech"]


def test_the_board_sensor_deletes_the_partitions_of_retired_boards(instance, store_url):
    registry = registry_for(store_url)
    registry.add("greenhouse", ["acme", "gone"], origin="cli")
    first = tick(instance, store_url)
    assert sorted(instance.get_dynamic_partitions("greenhouse_boards")) == ["acme", "gone"]
    registry.not_found("greenhouse", "gone", "404", retire_after=1)  # retired by its 404s

    later = tick(instance, store_url, cursor=first.cursor)

    assert later.run_requests == []
    assert instance.get_dynamic_partitions("greenhouse_boards") == ["acme"]
    registry.add("greenhouse", ["gone"], origin="cli")  # an operator brings it back
    assert [r.partition_key for r in tick(instance, store_url, cursor=later.cursor).run_requests] == ["gone"]


def test_a_discovery_run_whose_every_probe_failed_is_a_failed_run(sqlite_url):
    registry_for(sqlite_url).add_candidates(["Acme Robotics", "Globex"], origin="cli")
    with LocalServer({}) as server:
        unreachable = server.base_url  # the port is closed once the server stops: every probe errs
    result = dg.materialize(
        [discovered_boards], raise_on_error=False,
        resources={"store": StoreResource(url=sqlite_url),
                   "http": HttpResource(greenhouse_base_url=unreachable, lever_base_url=unreachable,
                                        requests_per_second=1000, max_attempts=1)},
        run_config=dg.RunConfig(ops={"discovery__discovered_boards": DiscoveryConfig(batch_size=2)}))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "every one of the 2 probe(s) failed" in failure.step_failure_data.user_failure_data.description


def test_definitions_load_with_the_sensor_and_the_schedule(sqlite_url):
    resources = {"store": StoreResource(url=sqlite_url), "http": HttpResource()}
    lever = dg.DynamicPartitionsDefinition(name="lever_boards")
    defs = dg.Definitions.merge(discovery.defs, dg.Definitions(
        assets=[raw_snapshot], jobs=[GREENHOUSE_JOB],
        sensors=[SENSOR, build_board_sensor("lever", lever, "greenhouse_sync")], resources=resources))
    dg.Definitions.validate_loadable(defs)

    assert defs.resolve_sensor_def("greenhouse_board_sensor").minimum_interval_seconds == 120
    assert defs.resolve_sensor_def("lever_board_sensor").job_name == "greenhouse_sync"
    schedule = defs.resolve_schedule_def("discovery_probe")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("25 * * * *", "Europe/London")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # it calls public APIs
    assert discovery_probe.name == "discovery_probe"
    (spec,) = [s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(["discovery", "discovered_boards"])]
    assert spec.group_name == "discovery" and set(spec.kinds) == {"python", "httpx"}
    assert spec.owners == ["team:ingest"] and spec.description
    fields = DiscoveryConfig.model_fields
    assert set(fields) == {"batch_size", "reprobe_after_days", "retired_reprobe_after_days"}
    assert all(f.description for f in fields.values())
