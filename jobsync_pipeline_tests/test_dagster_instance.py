"""The embedded instance's event log writes a step's batch of per-partition materializations at once, and
stores exactly what Dagster's own SQLite event log stores."""
import dagster as dg
import yaml
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster_postgres import PostgresEventLogStorage

from jobsync_pipeline.dagster_instance import (BatchingSqliteEventLogStorage, JobsyncInstance,
                                               JobsyncPostgresEventLogStorage)

from jobsync_pipeline_tests.conftest import PROJECT_ROOT

JOBSYNC_INSTANCE = {"module": "jobsync_pipeline.dagster_instance", "class": "JobsyncInstance"}
BOARDS = [f"board-{n:02d}" for n in range(12)]
boards = dg.StaticPartitionsDefinition(BOARDS)


@dg.asset(partitions_def=boards, backfill_policy=dg.BackfillPolicy.single_run(), tags={"team": "sync"})
def snapshot(context: dg.AssetExecutionContext):
    return dg.MaterializeResult(metadata={"boards": len(context.partition_keys)})


@dg.asset(partitions_def=boards, backfill_policy=dg.BackfillPolicy.single_run(), deps=[snapshot])
def catalog(context: dg.AssetExecutionContext):
    for key in context.partition_keys:  # logged one by one: no batch
        context.log_event(dg.AssetObservation(asset_key=context.asset_key, partition=key, metadata={"seen": 1}))
    return dg.MaterializeResult(metadata={"boards": len(context.partition_keys)})


def project_instance(home):
    """An instance as `dagster dev` makes it from the project's dagster.yaml in DAGSTER_HOME."""
    home.mkdir()
    (home / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def backfill(instance, first: str, last: str):
    result = dg.materialize([snapshot, catalog], instance=instance, tags={
        "dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})
    assert result.success
    return result


def stored(instance) -> dict:
    """What the UI and the asset queries read back."""
    out = {}
    for asset in (snapshot.key, catalog.key):
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset), limit=100).records
        observations = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=asset), limit=100).records
        latest = instance.get_latest_materialization_event(asset)
        out[asset.to_user_string()] = {
            "materialized": sorted(instance.get_materialized_partitions(asset)),
            "materializations": sorted((r.partition_key, r.asset_materialization.metadata["boards"].value)
                                       for r in records),
            "observations": sorted(r.partition_key for r in observations),
            "latest": latest and latest.dagster_event.partition,
            "by_partition": [len(instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[board]), limit=10).records)
                for board in BOARDS],
            "has_asset": instance.has_asset_key(asset),
        }
    return out


def run_events(instance, run_id: str) -> list:
    return sorted((record.event_log_entry.dagster_event.event_type_value,
                   record.event_log_entry.dagster_event.partition)
                  for record in instance.get_records_for_run(run_id, limit=1000).records
                  if record.event_log_entry.dagster_event and record.event_log_entry.dagster_event.asset_key)


def test_the_project_instance_is_jobsync_instance_with_a_batching_event_log(tmp_path):
    with project_instance(tmp_path / "home") as instance:
        assert type(instance) is JobsyncInstance
        assert type(instance.event_log_storage) is BatchingSqliteEventLogStorage
        assert instance.event_log_storage._base_dir == str(tmp_path / "home" / "history" / "runs")  # noqa: SLF001
        ref = instance.get_ref()  # what `dagster dev` hands its webserver, daemon and run workers
    with dg.DagsterInstance.from_ref(ref) as again:
        assert type(again.event_log_storage) is BatchingSqliteEventLogStorage


def test_a_batch_is_stored_as_dagsters_sqlite_event_log_stores_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "5")  # batches of 5 and an end batch of 2 over 12 boards
    written = {"single": 0, "batches": []}
    single, batch = SqliteEventLogStorage.store_event, BatchingSqliteEventLogStorage.store_event_batch

    def count_single(self, event):
        if event.dagster_event and event.dagster_event.is_step_materialization:
            written["single"] += 1
        return single(self, event)

    def count_batch(self, events):
        if all(event.dagster_event.is_step_materialization for event in events):
            written["batches"].append(len(events))
        return batch(self, events)

    monkeypatch.setattr(SqliteEventLogStorage, "store_event", count_single)
    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch", count_batch)
    with project_instance(tmp_path / "jobsync") as batching, dg.instance_for_test() as dagsters:
        assert type(dagsters.event_log_storage) is SqliteEventLogStorage
        runs = {}
        for name, instance in (("jobsync", batching), ("dagster", dagsters)):
            first = backfill(instance, BOARDS[0], BOARDS[6])
            second = backfill(instance, BOARDS[4], BOARDS[-1])  # overlapping: latest per partition
            runs[name] = (first.run_id, second.run_id)
            if name == "jobsync":
                # 7 and 8 boards of two assets, in batches of at most 5; no materialization written alone
                assert written == {"single": 0, "batches": [5, 2, 5, 2, 5, 3, 5, 3]}
        assert stored(batching) == stored(dagsters)
        result = stored(batching)["snapshot"]
        assert result["materialized"] == BOARDS
        assert result["by_partition"] == [1] * 4 + [2] * 3 + [1] * 5
        assert result["materializations"][0] == ("board-00", 7)
        assert result["latest"] in BOARDS[4:]
        assert stored(batching)["catalog"]["observations"] == sorted(BOARDS + BOARDS[4:7])
        for mine, theirs in zip(runs["jobsync"], runs["dagster"]):
            assert run_events(batching, mine) == run_events(dagsters, theirs)


def test_batches_of_several_runs_or_other_events_are_written_one_by_one(tmp_path):
    with project_instance(tmp_path / "home") as instance:
        first = backfill(instance, BOARDS[0], BOARDS[1])
        second = backfill(instance, BOARDS[2], BOARDS[3])
        entries = [record.event_log_entry for run in (first, second)
                   for record in instance.get_records_for_run(run.run_id, limit=1000).records
                   if record.event_log_entry.dagster_event.is_step_materialization
                   and record.event_log_entry.dagster_event.asset_key == snapshot.key]
        assert len(entries) == 4
        planned = [record.event_log_entry for record in instance.get_records_for_run(first.run_id, limit=1000).records
                   if record.event_log_entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION_PLANNED"]
        instance.event_log_storage.store_event_batch(entries)  # two runs: each event on its own
        instance.event_log_storage.store_event_batch(planned)  # not materializations: one by one
        assert len(instance.fetch_materializations(snapshot.key, limit=100).records) == 8
        assert sorted(instance.get_materialized_partitions(snapshot.key)) == BOARDS[:4]


def test_production_instance_keeps_postgresqls_event_log_with_planned_checks_serialized_once(new_postgres_database):
    """PostgreSQL's event log writes batches itself (deploy/dagster.yaml names the instance class too)."""
    deploy = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    assert deploy["instance_class"] == JOBSYNC_INSTANCE
    with dg.instance_for_test(overrides={
            "instance_class": JOBSYNC_INSTANCE,
            "storage": {"postgres": {"postgres_url": new_postgres_database()}}}) as instance:
        assert type(instance) is JobsyncInstance
        assert type(instance.event_log_storage) is JobsyncPostgresEventLogStorage
        assert instance.event_log_storage.postgres_url == instance.run_storage.postgres_url


def _planned_check_rows(instance, run_id: str) -> list[tuple]:
    """A run's planned partitioned check, as the event log stores it: one row per partition."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationPlanned
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.events.log import EventLogEntry
    from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

    planned = AssetCheckEvaluationPlanned(asset_key=snapshot.key, check_name="board_outcome",
                                          partitions_subset=boards.subset_with_partition_keys(BOARDS))
    event = DagsterEvent(event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value,
                         job_name="backfill", event_specific_data=planned)
    instance.event_log_storage.store_event(EventLogEntry(
        error_info=None, level=10, user_message="", run_id=run_id, timestamp=1_764_900_000.0, dagster_event=event))
    table = AssetCheckExecutionsTable
    with instance.event_log_storage.index_connection() as conn:
        return [tuple(row) for row in conn.execute(table.select().with_only_columns(
            table.c.asset_key, table.c.check_name, table.c.partition, table.c.run_id, table.c.execution_status,
            table.c.evaluation_event, table.c.evaluation_event_timestamp, table.c.evaluation_event_storage_id,
        ).where(table.c.run_id == run_id).order_by(table.c.partition))]


def test_a_planned_partitioned_check_is_stored_as_dagster_stores_it(tmp_path, new_postgres_database):
    with project_instance(tmp_path / "jobsync") as sqlite_jobsync, dg.instance_for_test() as sqlite_dagster:
        mine, theirs = _planned_check_rows(sqlite_jobsync, "run-1"), _planned_check_rows(sqlite_dagster, "run-1")
    assert mine == theirs
    assert [row[2] for row in mine] == BOARDS
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": new_postgres_database()}},
                                         "instance_class": JOBSYNC_INSTANCE}) as jobsync:
        assert type(jobsync.event_log_storage) is JobsyncPostgresEventLogStorage
        mine = _planned_check_rows(jobsync, "run-2")
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": new_postgres_database()}}}) as dagster:
        assert type(dagster.event_log_storage) is PostgresEventLogStorage
        theirs = _planned_check_rows(dagster, "run-2")
    assert mine == theirs
    assert len(mine) == len(BOARDS)
