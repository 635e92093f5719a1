"""The Dagster instance: Dagster's own, its event log made cheaper per board.

A step over a run's boards logs one materialization per board, in batches (DAGSTER_EVENT_BATCH_SIZE,
`defs/__init__.py`). Dagster's PostgreSQL event log writes a batch at once; its SQLite one writes each
event on its own: it opens the run's database file and the index's, inserts and commits in each, about
7 ms an event on this machine, so three materializations a board cost 20 ms a board whatever the step
does. `BatchingSqliteEventLogStorage` writes a batch of materializations (or observations) of one run
as Dagster's PostgreSQL storage does: the events in the run's file in one transaction, then in the
index in one transaction, with their tags and each asset's latest event. And both event logs store a
run's planned per-board check (one row per board) with the planned event serialized once, not once
per row (`PlannedChecksSerializedOnce`). Everything else, and every read, is Dagster's own storage, on
the same files or database: an instance can switch between the two.

Both `dagster.yaml` (embedded) and `deploy/dagster.yaml` (production) select `JobsyncInstance`
(`instance_class`), which swaps the event log Dagster built from the instance's configuration for one
of these on the same folder or database, wherever that is (DAGSTER_HOME, or the temporary folder
`dagster dev` makes without it: a `storage:` class would need the folder in its configuration).
"""
from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import EventLogStorage, SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._serdes import serialize_value
from dagster_postgres import PostgresEventLogStorage

# What Dagster's PostgreSQL storage writes as one batch too; any other batch is written event by event.
_BATCHED = (frozenset({DagsterEventType.ASSET_MATERIALIZATION}), frozenset({DagsterEventType.ASSET_OBSERVATION}))
# Rows per multi-row INSERT into a run's file (SQLite binds at most 32,766 values in one statement).
_ROWS_PER_INSERT = 500


class PlannedChecksSerializedOnce:
    """An SQL event log storing a run's planned partitioned check (one row per partition) with the
    planned event serialized once instead of once per partition."""

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's own (SqlEventLogStorage's), with the planned event serialized once instead of once
        per partition: the event carries the run's partition subset, so a run's planned check over 1,000
        boards serialized the 1,000 keys 1,000 times (4 checks: about 2 ms a board), and the rows are
        inserted by one executemany rather than one statement binding every row's values."""
        planned = event.get_dagster_event().event_specific_data
        partitions = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = dict(asset_key=planned.asset_key.to_string(), check_name=planned.check_name, run_id=event.run_id,
                      execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
                      evaluation_event=serialize_value(event),
                      evaluation_event_timestamp=self._event_insert_timestamp(event),
                      evaluation_event_storage_id=event_id)
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**common, "partition": key} for key in partitions])


class BatchingSqliteEventLogStorage(PlannedChecksSerializedOnce, SqliteEventLogStorage):
    """`SqliteEventLogStorage` writing a batch of one run's materializations (or observations) in one
    transaction per database file instead of two per event."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        kinds = frozenset(event.get_dagster_event().event_type for event in events)
        if kinds not in _BATCHED or len({event.run_id for event in events}) != 1 or not all(
                event.get_dagster_event().asset_key for event in events):
            super().store_event_batch(events)
            return
        with self.run_connection(events[0].run_id) as conn:
            for start in range(0, len(events), _ROWS_PER_INSERT):
                conn.execute(self.prepare_insert_event_batch(events[start:start + _ROWS_PER_INSERT]))
        # the index's event ids, one insert each: the asset records and tags point at them
        with self.index_transaction() as conn:
            ids = [conn.execute(self.prepare_insert_event(event)).inserted_primary_key[0] for event in events]
            self._store_asset_event_tags(conn, events, ids)
            latest = {event.get_dagster_event().asset_key: (event, event_id) for event, event_id in zip(events, ids)}
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)


class JobsyncPostgresEventLogStorage(PlannedChecksSerializedOnce, PostgresEventLogStorage):
    """Dagster's PostgreSQL event log (which writes batches itself), its planned checks serialized once."""


class JobsyncInstance(dg.DagsterInstance):
    """Dagster's instance, its event log Dagster's own SQLite or PostgreSQL one made a
    `BatchingSqliteEventLogStorage` (on the same folder) or a `JobsyncPostgresEventLogStorage` (on the
    same database); any other storage is kept as configured."""

    def __init__(self, *args, event_storage: EventLogStorage, **kwargs):
        if type(event_storage) is SqliteEventLogStorage:
            event_storage = BatchingSqliteEventLogStorage(event_storage._base_dir,  # noqa: SLF001 - its folder
                                                          inst_data=event_storage.inst_data)
        elif type(event_storage) is PostgresEventLogStorage:
            # the same database and credentials; Dagster's holds no connection (NullPool) to close
            event_storage = JobsyncPostgresEventLogStorage(
                event_storage.postgres_url, should_autocreate_tables=False, inst_data=event_storage.inst_data,
                token_provider=event_storage._token_provider)  # noqa: SLF001
        super().__init__(*args, event_storage=event_storage, **kwargs)

    @classmethod
    def config_schema(cls) -> dict:
        return {}  # no settings of its own beyond the instance's

    @staticmethod
    def config_defaults(base_dir: str):
        return InstanceRef.config_defaults(base_dir)
