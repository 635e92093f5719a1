"""Per-board check results in a run over many boards.

Dagster cannot fail some partitions of one run (its issue 17836), and an `AssetCheckResult` yielded in
a run over a key range has no partition. An `AssetCheckEvaluation` can name its partition, so each
lane step records every board's outcome as an evaluation of that board's partition of a partitioned
check: a failed board is red on its own partition, whatever the other boards of its run did.
"""
from __future__ import annotations

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

BOARD_OUTCOME = "board_outcome"
MASS_EXPIRY_GUARD = "mass_expiry_guard"


@dataclass(frozen=True)
class CheckOutcome:
    """One board's result of one check."""

    passed: bool
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
    metadata: Mapping[str, Any] = field(default_factory=dict)


def board_outcome_spec(asset_key: dg.AssetKey, partitions: dg.PartitionsDefinition, what: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        BOARD_OUTCOME, asset=asset_key, partitions_def=partitions,
        description=f"What happened to each board in its latest {what}: passed when it succeeded (or was "
                    "skipped as a late file), failed with the board's reason otherwise.")


def record(context: dg.AssetExecutionContext, asset_key: dg.AssetKey, check_name: str,
           outcomes: list[tuple[str, CheckOutcome]], *, blocking: bool = False) -> None:
    """Log each (board, outcome) as the evaluation of `check_name` on the board's partition, in the
    order given, each tied to the board's latest materialization."""
    targets = _latest_materializations(context, asset_key, [board for board, _ in outcomes])
    for board, outcome in outcomes:
        context.log_event(dg.AssetCheckEvaluation(
            asset_key=asset_key, check_name=check_name, passed=outcome.passed, partition=board,
            severity=outcome.severity, description=outcome.description, blocking=blocking,
            metadata=dict(outcome.metadata), target_materialization_data=targets.get(board)))


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
