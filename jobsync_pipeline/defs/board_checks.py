"""Per-board materializations and check results in a run over many boards.

Dagster cannot fail some partitions of one run (its issue 17836), and an `AssetCheckResult` yielded in
a run over a key range has no partition. An `AssetCheckEvaluation` can name its partition, so each
lane step records every board's outcome as an evaluation of that board's partition of a partitioned
check: a failed board is red on its own partition, whatever the other boards of its run did.

Each board's numbers go on its partition's materialization. A step whose one output materializes every
board of its run sets them once for all boards (`add_partition_metadata`): Dagster's
`add_asset_metadata(partition_key=)` reads every partition of the asset from the instance and copies all
the metadata so far on each call, quadratic in a backfill's boards. A step that materializes some boards
only (`job_diff`) logs `AssetMaterialization`s in batches (`log_materializations`), as Dagster logs the
partitions of one output: with DAGSTER_EVENT_BATCH_SIZE set (defs/__init__.py) a batch is written in one go.

Dagster marks a partition failed when a failed run planned it and did not materialize it. With
DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS (defs/__init__.py) a run plans its partitions as one
subset, which Dagster does not count that way, so `job_diff` plans the boards that failed again, one
by one (`plan_failed_partitions`), before its run fails: they show as failed partitions, as before.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
# The target materialization ties an evaluation to the materialization it checked; without it the UI
# counts a passed check on a freshly materialized partition as not yet evaluated. Dagster builds it
# the same way for the AssetCheckResults it resolves, but does not export the class.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
# How Dagster logs an output's partitions as one batch (execute_step._log_materialization_or_observation_events),
# and where it keeps an output's metadata per partition; not exported either. dagster is pinned
# (pyproject.toml), and the lane tests check the events and their metadata.
from dagster._core.events import (AssetMaterializationPlannedData, DagsterEvent, DagsterEventBatchMetadata,
                                  generate_event_batch_id)
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator

BOARD_OUTCOME = "board_outcome"
MASS_EXPIRY_GUARD = "mass_expiry_guard"


@dataclass(frozen=True)
class CheckOutcome:
    """One board's result of one check."""

    passed: bool
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # A plain success (fetched, parsed without bad records, synced, nothing to hold back): the board's
    # materialization already says it, so a large run logs it only for a board recovering from another
    # outcome (lanes.LaneStep.worth_recording).
    routine: bool = False


def board_outcome_spec(asset_key: dg.AssetKey, partitions: dg.PartitionsDefinition, what: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        BOARD_OUTCOME, asset=asset_key, partitions_def=partitions,
        description=f"What happened to each board in its latest {what}: passed when it succeeded (or was "
                    "skipped as a late file), failed with the board's reason otherwise.")


def record(context: dg.AssetExecutionContext, asset_key: dg.AssetKey, check_name: str,
           outcomes: list[tuple[str, CheckOutcome]], *, blocking: bool = False) -> None:
    """Log each (board, outcome) as the evaluation of `check_name` on the board's partition, in the
    order given, each tied to the board's latest materialization."""
    if not outcomes:
        return
    targets = _latest_materializations(context, asset_key, [board for board, _ in outcomes])
    for board, outcome in outcomes:
        context.log_event(dg.AssetCheckEvaluation(
            asset_key=asset_key, check_name=check_name, passed=outcome.passed, partition=board,
            severity=outcome.severity, description=outcome.description, blocking=blocking,
            metadata=dict(outcome.metadata), target_materialization_data=targets.get(board)))


def add_partition_metadata(context: dg.AssetExecutionContext, asset_key: dg.AssetKey,
                           by_partition: Mapping[str, Mapping[str, Any]]) -> None:
    """`context.add_asset_metadata(metadata, asset_key, partition_key=board)` for every board at once; each
    board must be one of the run's partitions."""
    step_context = context.op_execution_context._step_execution_context  # noqa: SLF001 - see the import
    so_far = dict(step_context._metadata_accumulator.per_output_metadata)  # noqa: SLF001
    for board, metadata in by_partition.items():
        handle = AssetMetadataHandle(asset_key=asset_key, partition_key=board)
        so_far[handle] = {**so_far.get(handle, {}), **metadata}
    step_context._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=so_far)  # noqa: SLF001


def log_materializations(context: dg.AssetExecutionContext, materializations: list[dg.AssetMaterialization]) -> None:
    """Log the materializations as one batch of events, as `context.log_event` logs one."""
    if not materializations:
        return
    op_context = context.op_execution_context
    batch_id, last = generate_event_batch_id(), len(materializations) - 1
    for position, materialization in enumerate(materializations):
        op_context._events.append(DagsterEvent.asset_materialization(  # noqa: SLF001 - see the import
            op_context._step_execution_context, materialization,  # noqa: SLF001
            DagsterEventBatchMetadata(batch_id, position == last)))


def plan_failed_partitions(context: dg.AssetExecutionContext, asset_key: dg.AssetKey, boards: list[str]) -> None:
    """Log a planned materialization of each board on its own, as Dagster does for a run's partitions
    when it does not plan them as one subset; the run then fails, and they show as failed partitions."""
    for board in boards:
        context.instance.report_dagster_event(DagsterEvent.build_asset_materialization_planned_event(
            context.run.job_name, str(context.op_execution_context.op_handle),
            AssetMaterializationPlannedData(asset_key, partition=board)), context.run.run_id, logging.DEBUG)


def check_outputs(context: dg.AssetExecutionContext):
    """The step's check outputs, once every board's evaluation is logged: Dagster requires an output per
    selected check, and yields the same empty one for each AssetCheckResult it resolves."""
    for check_key in context.selected_asset_check_keys:
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


def _latest_materializations(context: dg.AssetExecutionContext, asset_key: dg.AssetKey,
                             boards: list[str]) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """Each partition's latest materialization, from this run or (for a board that failed) an earlier one:
    the UI shows a partition's check status against it, as Dagster does for an AssetCheckResult.

    One query finds those of this run (newest first, so the first record of a partition is its latest);
    only the boards it does not cover are looked up one by one."""
    def target(record) -> AssetCheckEvaluationTargetMaterializationData:
        return AssetCheckEvaluationTargetMaterializationData(
            run_id=record.run_id, storage_id=record.storage_id, timestamp=record.timestamp)

    found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    recent = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=boards), limit=len(boards)).records
    for record in recent:
        found.setdefault(record.partition_key, target(record))
    for board in set(boards) - set(found):
        older = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[board]), limit=1).records
        if older:
            found[board] = target(older[0])
    return found
