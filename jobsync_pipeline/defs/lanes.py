"""The lane factory: `{source}/raw_snapshot → postings → job_diff`, partitioned by the source's boards.

Each asset loops over the run's partition keys (a backfill of many boards is one run). A board that
fails is recorded in `syncs` and left out of the later steps, so one bad board never stops the others;
the run still fails at the end, naming every board that did not sync.
"""

import json
import time
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
from pydantic import Field

from jobsync_pipeline.core.expiry_guard import GuardPolicy, GuardVerdict, evaluate
from jobsync_pipeline.core.models import ParsedSnapshot
from jobsync_pipeline.defs.partitions import contiguous_ranges, range_tags
from jobsync_pipeline.defs.resources import StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.sources import SourceSpec
from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.http import FetchError
from jobsync_pipeline.store.repo import COMPLETE, Expiry, ExpiryRefused, RawSnapshot, Store


class JobDiffConfig(dg.Config):
    accept_shrink: bool = Field(default=False, description=(
        "Apply a diff even when the mass-expiry guard refuses it: set it when a board really shrank."))
    max_shrink: float = Field(default=0.5, gt=0, le=1, description=(
        "Refuse a snapshot listing more than this fraction fewer postings than the board's recent median."))
    min_board_size: int = Field(default=10, ge=0, description=(
        "The guard does not apply to boards whose recent median is below this size."))

    def guard(self, found: int, recent_found: list[int]):
        """The check `apply_snapshot` runs on the computed diff before writing it."""
        policy = GuardPolicy(max_shrink=self.max_shrink, min_board_size=self.min_board_size)

        def verdict(diff) -> GuardVerdict | None:
            if self.accept_shrink:
                return None
            result = evaluate(found, len(diff.expired), recent_found, policy)
            return None if result.ok else result

        return verdict


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

    @contextmanager
    def connector_session(self):
        """The connector for this step; its HTTP connections are closed when the step ends."""
        try:
            yield self.connector
        finally:
            self.connector.close()

    def not_found(self, board: str, exc: FetchError) -> None:
        """A board that answers 404 fails, and is retired (its jobs expired) after N in a row."""
        policy = self.context.resources.sync_policy
        status, expired = self.store.boards.not_found(self.spec.name, board, str(exc), run_id=self.context.run.run_id,
                                                      retire_after=policy.retire_after_not_found)
        if status == "retired":
            if any(s.board == board for s in self.store.syncs_for_run(self.context.run.run_id, self.spec.name)):
                self.failures[board] = f"{exc}: board retired, {expired} job(s) expired"  # its syncs row is written
            else:  # retired before this run (a hand-run partition): end it here, or the later steps would
                # re-apply its last archived payload and bring its expired jobs back
                self.failures[board] = f"{exc}: board already retired, nothing applied"
                self.store.record_sync(self.spec.name, board, "retired", run_id=self.context.run.run_id,
                                       error=self.failures[board])
            self.context.log.warning(f"{self.spec.name}/{board}: {self.failures[board]}")
        else:
            self.fail(board, f"{exc} (retired after {policy.retire_after_not_found} in a row)")

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

    def prepared(self, board: str, started: float) -> tuple[RawSnapshot, ParsedSnapshot] | None:
        """`prepare`, or None once a stale or broken snapshot has been recorded as the board's sync."""
        try:
            return self.prepare(board)
        except StaleSnapshot as exc:
            self.store.record_sync(self.spec.name, board, "stale", run_id=self.context.run.run_id, error=str(exc))
            self.context.log.warning(str(exc))
            self.report(board, started, stale=1, failed=0)
        except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
            self.fail(board, describe(exc))
            self.report(board, started, failed=1)
        return None

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
    partitions = spec.partitions_def()
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
        registry = step.store.boards
        step.store.ensure_boards(spec.name, boards)  # a partition added by hand is a board too
        registry.attempted(spec.name, boards)
        with step.connector_session() as connector:
            for board in boards:
                started = time.monotonic()
                previous = step.store.latest_raw(spec.name, board)
                try:
                    payload = connector.fetch(board, previous.payload() if previous else None)
                except FetchError as exc:
                    if exc.status == 404 and spec.board_registry:
                        step.not_found(board, exc)
                    else:
                        step.fail(board, describe(exc))
                    step.report(board, started, failed=1)
                    continue
                except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
                    step.fail(board, describe(exc))
                    step.report(board, started, failed=1)
                    continue
                registry.answered(spec.name, board)
                identical = payload.not_modified or step.store.archive_raw(spec.name, payload)[1]
                step.report(board, started, bytes=len(payload.body), identical_payload=int(identical),
                            not_modified=int(payload.not_modified), failed=0)
        return step.result(len(boards))

    @dg.asset(name="postings", kinds={"python", "pydantic"}, deps=[raw_snapshot],
              description=f"{spec.title}: each board's postings validated and normalized; bad records "
                          "counted and kept aside in `bad_records`, late snapshots recorded as stale.", **common)
    def postings(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        step = LaneStep(spec, context)
        boards = step.boards()
        for board in boards:
            started = time.monotonic()
            prepared = step.prepared(board, started)
            if prepared is None:
                continue
            raw, parsed = prepared
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

    job_diff_key = dg.AssetKey([spec.name, "job_diff"])

    @dg.asset(name="job_diff", kinds={"python", "sql"}, deps=[postings],
              description=f"{spec.title}: each board's snapshot diffed against the store (new, changed, "
                          "unchanged, expired, reactivated) and applied in one transaction.",
              check_specs=[dg.AssetCheckSpec(
                  "mass_expiry_guard", asset=job_diff_key, blocking=True,
                  description="Refuses to expire most of a board after an empty, broken or partial fetch: "
                              "the board's diff is not applied and its syncs row says why.")], **common)
    def job_diff(context: dg.AssetExecutionContext, config: JobDiffConfig):
        step = LaneStep(spec, context)
        expiry = COMPLETE if spec.complete_snapshots else Expiry(
            complete=False, max_age=timedelta(days=context.resources.sync_policy.feed_max_age_days))
        boards = step.boards()
        guarded: dict[str, GuardVerdict] = {}
        for board in boards:
            started = time.monotonic()
            prepared = step.prepared(board, started)
            if prepared is None:
                continue
            raw, parsed = prepared
            sync_id = step.store.start_sync(spec.name, board, run_id=context.run.run_id, raw_snapshot_id=raw.id)
            counts = {"found": parsed.found, "bad": len(parsed.bad_records), "duplicates": len(parsed.duplicates)}
            # a feed expires jobs by age, never by what one fetch lists: nothing for the guard to refuse
            guard = config.guard(parsed.found, step.store.recent_found(spec.name, board)) \
                if spec.complete_snapshots else None
            try:
                diff = step.store.apply_snapshot(spec.name, board, [parsed.postings], sync_id=sync_id,
                                                 snapshot_at=parsed.snapshot_at, counts=counts, guard=guard,
                                                 expiry=expiry, jobs_board=spec.jobs_board)
            except ExpiryRefused as refused:
                guarded[board] = refused.verdict
                step.store.finish_sync(sync_id, "guarded", counts=counts, error=refused.verdict.reason)
                context.log.error(f"{spec.name}/{board}: mass-expiry guard: {refused.verdict.reason}")
                step.report(board, started, **counts, guarded=1, would_expire=refused.verdict.would_expire,
                            failed=0)
                continue
            except Exception as exc:  # the transaction rolled back; the sync row must still say why
                step.failures[board] = f"applying the diff failed: {exc}"
                step.store.finish_sync(sync_id, "failed", counts=counts, error=step.failures[board])
                context.log.exception(f"{spec.name}/{board}: applying the diff failed")
                step.report(board, started, failed=1)
                continue
            context.log.info(f"{spec.name}/{board}: {json.dumps(diff.counts())}")
            # the duplicates are counted by the apply after the diff; its syncs row has them
            applied = step.store.sync_result(sync_id).counts
            step.report(board, started, **counts, **diff.counts(), guarded=0, failed=0,
                        cross_source_duplicates=applied["cross_source_duplicates"],
                        possible_duplicates=applied["possible_duplicates"])
        failed = {s.board: s.error or s.status for s in step.store.syncs_for_run(context.run.run_id, spec.name)
                  if s.status == "failed"}
        if failed:  # the good boards are applied; the run still fails, naming every board that did not sync
            raise dg.Failure(description=_failure_text(failed), metadata={"failed": len(failed)})
        result = step.result(len(boards))
        yield dg.MaterializeResult(metadata=result.metadata)
        yield dg.AssetCheckResult(
            check_name="mass_expiry_guard", asset_key=job_diff_key, passed=not guarded,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if not guarded else _failure_text({b: v.reason for b, v in guarded.items()}),
            metadata={"guarded_boards": len(guarded),
                      "would_expire": sum(v.would_expire for v in guarded.values()),
                      "accept_shrink": config.accept_shrink})

    job = dg.define_asset_job(name=f"{spec.name}_sync", selection=dg.AssetSelection.groups(spec.name),
                              description=f"Sync {spec.title.lower()}: fetch, normalize and diff each board.")
    schedules = [build_stalest_first_schedule(spec, job, partitions)] if spec.cron else []
    return dg.Definitions(assets=[raw_snapshot, postings, job_diff], jobs=[job], schedules=schedules,
                          sensors=spec.automation(spec, job, partitions))


def build_stalest_first_schedule(spec: SourceSpec, job, partitions: dg.PartitionsDefinition):
    @dg.schedule(name=f"{spec.name}_sync_schedule", cron_schedule=spec.cron, job=job,
                 execution_timezone="Europe/London", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Syncs the stalest {spec.title.lower()} first, a batch per tick, in one run.")
    def stalest_first(context: dg.ScheduleEvaluationContext, store: StoreResource,
                      sync_policy: SyncPolicyResource):
        registry = store.store().boards
        if spec.static_partitions is not None:
            known = list(spec.static_partitions)
            store.store().ensure_boards(spec.name, known)  # the stalest-first order reads the boards table
        else:
            known = context.instance.get_dynamic_partitions(partitions.name)
        # a board not yet a partition waits for the board sensor, which adds it with a run of its own; never
        # synced, it sorts first, so the batch reads past those boards instead of giving them its places
        partitioned = set(known)
        waiting = sum(b not in partitioned for b in registry.syncable(spec.name))
        size = spec.batch_size or sync_policy.batch_size
        batch = [b for b in registry.stalest(spec.name, size + waiting) if b in partitioned]
        if not batch:
            return dg.SkipReason(f"no {spec.name} boards to sync")
        tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "now"
        # stalest-first rotates through the partition order, so the batch is one range (two at the wrap)
        return [dg.RunRequest(run_key=f"{spec.name}:{tick}:{start}", tags=range_tags(start, end))
                for start, end in contiguous_ranges(known, batch)]

    return stalest_first
