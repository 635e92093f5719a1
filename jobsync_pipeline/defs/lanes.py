"""The lane factory: `{source}/raw_snapshot → postings → job_diff`, partitioned by the source's boards.

Each asset loops over the run's partition keys (a backfill of many boards is one run). A board that
fails is recorded in `syncs` and left out of the later steps, so one bad board never stops the others;
the run still fails at the end, naming every board that did not sync.
"""

import json
import time

import dagster as dg

from jobsync_pipeline.core.models import ParsedSnapshot
from jobsync_pipeline.defs.sources import SourceSpec
from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.store.repo import RawSnapshot, Store


class StaleSnapshot(Exception):
    """The payload is older than the snapshot already applied: skipping it keeps the catalog current."""


class LaneStep:
    """One step of a lane over the run's boards: the store, the connector and the board bookkeeping."""

    def __init__(self, spec: SourceSpec, context: dg.AssetExecutionContext):
        self.spec = spec
        self.context = context
        self.store: Store = context.resources.store.store()
        self.connector = spec.connector(context.resources)
        self.started = time.monotonic()
        self.failures: dict[str, str] = {}

    def boards(self) -> list[str]:
        """The run's boards that no earlier step has already ended (refused, failed or stale)."""
        ended = {s.board for s in self.store.syncs_for_run(self.context.run.run_id, self.spec.name)}
        return [b for b in self.context.partition_keys if b not in ended]

    def fail(self, board: str, error: str, **fields) -> None:
        self.failures[board] = error
        self.store.record_sync(self.spec.name, board, "failed", run_id=self.context.run.run_id, error=error, **fields)
        self.context.log.error(f"{self.spec.name}/{board}: {error}")

    def prepare(self, board: str) -> tuple[RawSnapshot, ParsedSnapshot]:
        """The board's newest archived payload, parsed; raises for a missing, broken or stale one."""
        raw = self.store.latest_raw(self.spec.name, board)
        if raw is None:
            raise BoardError(f"{self.spec.name}/{board}: nothing archived yet; materialize raw_snapshot first")
        parsed = self.connector.parse(raw.payload())
        applied = self.store.last_snapshot_at(self.spec.name, board)
        if parsed.snapshot_at and applied and parsed.snapshot_at < applied:
            raise StaleSnapshot(f"{raw.location}: snapshot of {parsed.snapshot_at.isoformat()} is older than "
                                f"the applied one of {applied.isoformat()}; skipped, the catalog is unchanged")
        return raw, parsed

    def report(self, board: str, started: float, **numbers: float) -> None:
        """Per-board numbers on that partition's materialization, so the UI plots each board's history."""
        self.context.add_asset_metadata(
            {**numbers, "duration_seconds": round(time.monotonic() - started, 3)}, partition_key=board)

    def result(self, attempted: int) -> dg.MaterializeResult:
        """The step's run-wide numbers; a step whose every board failed fails here, naming each board."""
        if self.failures and len(self.failures) == attempted:
            raise dg.Failure(description=_failure_text(self.failures), metadata={"failed": len(self.failures)})
        return dg.MaterializeResult(metadata={
            "boards_in_run": len(self.context.partition_keys), "failed_in_run": len(self.failures),
            "run_seconds": round(time.monotonic() - self.started, 3)})


def describe(exc: Exception) -> str:
    """A board error's message as operators read it; unexpected errors keep their type."""
    return str(exc) if isinstance(exc, BoardError) else f"{type(exc).__name__}: {exc}"


def _failure_text(failures: dict[str, str]) -> str:
    return f"{len(failures)} board(s) did not sync:\n" + "\n".join(f"- {b}: {e}" for b, e in failures.items())


def build_source_lane(spec: SourceSpec) -> dg.Definitions:
    partitions = dg.DynamicPartitionsDefinition(name=spec.partitions_name)
    common = dict(
        key_prefix=[spec.name], group_name=spec.name, owners=list(spec.owners), partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(), required_resource_keys={"store", *spec.resource_keys},
        **({"pool": spec.pool} if spec.pool else {}))

    @dg.asset(name="raw_snapshot", kinds=set(spec.kinds),
              description=f"{spec.title}: each board's payload exactly as fetched, archived in the store "
                          "(an identical payload is stored once).", **common)
    def raw_snapshot(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        step = LaneStep(spec, context)
        boards = list(context.partition_keys)
        step.store.ensure_boards(spec.name, boards)
        for board in boards:
            started = time.monotonic()
            try:
                payload = step.connector.fetch(board)
            except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
                step.fail(board, describe(exc))
                step.report(board, started, failed=1)
                continue
            _, identical = step.store.archive_raw(spec.name, payload)
            step.report(board, started, bytes=len(payload.body), identical_payload=int(identical), failed=0)
        return step.result(len(boards))

    @dg.asset(name="postings", kinds={"python", "pydantic"}, deps=[raw_snapshot],
              description=f"{spec.title}: each board's postings validated and normalized; bad records "
                          "counted and kept aside in `bad_records`, late snapshots recorded as stale.", **common)
    def postings(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        step = LaneStep(spec, context)
        boards = step.boards()
        for board in boards:
            started = time.monotonic()
            try:
                raw, parsed = step.prepare(board)
            except StaleSnapshot as exc:
                step.store.record_sync(spec.name, board, "stale", run_id=context.run.run_id, error=str(exc))
                context.log.warning(str(exc))
                step.report(board, started, stale=1, failed=0)
                continue
            except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
                step.fail(board, describe(exc))
                step.report(board, started, failed=1)
                continue
            step.store.keep_bad_records(raw.id, spec.name, board, parsed.bad_records)
            if parsed.duplicates:
                context.log.warning(f"{spec.name}/{board}: duplicate ids kept once: {parsed.duplicates[:20]}")
            step.report(board, started, found=parsed.found, bad=len(parsed.bad_records),
                        duplicates=len(parsed.duplicates), inactive=parsed.inactive, stale=0, failed=0)
            if parsed.bad_records:
                context.add_asset_metadata({"bad_records": dg.MetadataValue.json(
                    [{"position": r.position, "id": r.external_id, "reason": r.reason}
                     for r in parsed.bad_records[:50]])}, partition_key=board)
        return step.result(len(boards))

    @dg.asset(name="job_diff", kinds={"python", "sql"}, deps=[postings],
              description=f"{spec.title}: each board's snapshot diffed against the store (new, changed, "
                          "unchanged, expired, reactivated) and applied in one transaction.", **common)
    def job_diff(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        step = LaneStep(spec, context)
        boards = step.boards()
        for board in boards:
            started = time.monotonic()
            try:
                raw, parsed = step.prepare(board)
            except StaleSnapshot as exc:
                step.store.record_sync(spec.name, board, "stale", run_id=context.run.run_id, error=str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
                step.fail(board, describe(exc))
                step.report(board, started, failed=1)
                continue
            sync_id = step.store.start_sync(spec.name, board, run_id=context.run.run_id, raw_snapshot_id=raw.id)
            counts = {"found": parsed.found, "bad": len(parsed.bad_records), "duplicates": len(parsed.duplicates)}
            try:
                diff = step.store.apply_snapshot(spec.name, board, [parsed.postings], sync_id=sync_id,
                                                 snapshot_at=parsed.snapshot_at, counts=counts)
            except Exception as exc:  # the transaction rolled back; the sync row must still say why
                step.failures[board] = f"applying the diff failed: {exc}"
                step.store.finish_sync(sync_id, "failed", counts=counts, error=step.failures[board])
                context.log.exception(f"{spec.name}/{board}: applying the diff failed")
                step.report(board, started, failed=1)
                continue
            context.log.info(f"{spec.name}/{board}: {json.dumps(diff.counts())}")
            step.report(board, started, **counts, **diff.counts(), failed=0)
        failed = {s.board: s.error or s.status for s in step.store.syncs_for_run(context.run.run_id, spec.name)
                  if s.status == "failed"}
        if failed:  # the good boards are applied; the run still fails, naming every board that did not sync
            raise dg.Failure(description=_failure_text(failed), metadata={"failed": len(failed)})
        return step.result(len(boards))

    job = dg.define_asset_job(name=f"{spec.name}_sync", selection=dg.AssetSelection.groups(spec.name),
                              description=f"Sync {spec.title.lower()}: fetch, normalize and diff each board.")
    return dg.Definitions(assets=[raw_snapshot, postings, job_diff], jobs=[job],
                          sensors=spec.automation(spec, job, partitions))
