"""The lane factory: `{source}/raw_snapshot → postings → job_diff`, partitioned by the source's boards.

Each asset loops over the run's partition keys (a backfill of many boards is one run). A board that
fails is recorded in `syncs` and left out of the later steps, so one bad board never stops the others.
Every step records each board's outcome on that board's partition of its `board_outcome` check, and
`job_diff` materializes only the boards it applied; the run still fails at the end, naming every
board that did not sync.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from jobsync_pipeline.core.diff import SnapshotDiff
from jobsync_pipeline.core.expiry_guard import GuardPolicy, GuardVerdict, evaluate
from jobsync_pipeline.core.models import KnownRecords, ParsedSnapshot, RawPayload
from jobsync_pipeline.core.status import DIFF_COUNTS, BoardStatus, SyncStatus
from jobsync_pipeline import settings
from jobsync_pipeline.defs import console
from jobsync_pipeline.defs.board_checks import (BOARD_OUTCOME, MASS_EXPIRY_GUARD, CheckOutcome, board_outcome_spec,
                                                add_partition_metadata, check_outputs, log_materializations,
                                                plan_failed_partitions, record)
from jobsync_pipeline.defs.resources import StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.run_tags import contiguous_ranges, range_tags
from jobsync_pipeline.defs.sync_steps import StepJournal, StepLog, steps_metadata
from jobsync_pipeline.defs.source_specs import SourceSpec
from jobsync_pipeline.sources.base import BoardError, error_text
from jobsync_pipeline.sources.http import FetchError
from jobsync_pipeline.store.apply import COMPLETE, BoardBusy, Expiry, ExpiryRefused, Recognised
from jobsync_pipeline.store.repo import RawSnapshot, Store, SyncResult
from jobsync_pipeline.store.time import utcnow

# A board whose sync ended so fails its run (after every board's outcome is recorded); a stale board
# (a late file) does not: skipping it is the right outcome.
RUN_FAILING = (SyncStatus.FAILED, SyncStatus.GUARDED, SyncStatus.RETIRED)
STAGES = ("raw_snapshot", "postings", "job_diff")
WARN = dg.AssetCheckSeverity.WARN
# A step logs its boards' materializations, and job_diff settles its applied boards (their sync rows read,
# their step history trimmed), this many at a time: a few queries and one batch of events per batch of
# boards instead of a few per board, and a long backfill still shows its boards materialized as it goes.
SETTLE_BOARDS = 200
READ_AHEAD_BYTES = 64 * 1024 * 1024  # payloads read ahead at most (a board's alone may be more)
# raw_snapshot archives the payloads it fetched this many boards at a time, in one transaction (a backfill of
# small boards on PostgreSQL paid five round trips and a commit per board), or sooner once they add up to
# ARCHIVE_BYTES (a board's alone may be more).
ARCHIVE_BOARDS = 50
ARCHIVE_BYTES = 16 * 1024 * 1024
# In a run of more boards, a routine pass (CheckOutcome.routine) is not logged on the board's check: each
# evaluation is a Dagster event of its own, unbatched (5 to 15 ms), and a backfill of thousands of boards
# must not pay four per board. The schedule's batches and hand-run boards stay below it.
ROUTINE_OUTCOMES_UP_TO = 100


class JobDiffConfig(dg.Config):
    accept_shrink: bool = Field(default=False, description=(
        "Apply a diff even when the expiry guard holds it back (a large board shrank, or a board answered "
        "empty): set it when the board really shrank or closed."))
    max_shrink: float = Field(default=0.5, gt=0, le=1, description=(
        "Refuse a snapshot listing more than this fraction fewer postings than the board's recent median."))
    min_board_size: int = Field(default=10, ge=0, description=(
        "A partial shrink is not refused on boards whose recent median is below this size."))
    empty_confirm_hours: float = Field(default=6, ge=0, description=(
        "A board that answers with no postings after having some expires its jobs only when a sync at "
        "least this many hours after the first empty answer is empty too (or accept_shrink is set)."))

    def guard(self, history: tuple[list[int], datetime | None], found: int):
        """The check `apply_snapshot` runs on the computed diff before writing it, given the board's history
        (`Store.guard_histories`: its recent found counts, newest first, and since when it answers empty)."""
        policy = GuardPolicy(max_shrink=self.max_shrink, min_board_size=self.min_board_size,
                             empty_confirm=timedelta(hours=self.empty_confirm_hours))
        recent, empty_since = history

        def verdict(diff) -> GuardVerdict:
            return evaluate(found, len(diff.expired), recent, policy, empty_since=empty_since, now=utcnow(),
                            accepted=self.accept_shrink)

        return verdict


class StaleSnapshot(Exception):
    """The payload is older than the snapshot already applied: skipping it keeps the catalog current."""


class EveryRecordRefused(BoardError):
    """Nothing of the payload was valid: not an empty board (applied, it would expire every job the board
    lists). Its records are kept aside in bad_records when the board's failure is recorded."""

    def __init__(self, message: str, raw: RawSnapshot, records: list):
        super().__init__(message)
        self.raw, self.records = raw, records


class NotParsed(Exception):
    """Parsing a board inside its apply failed (`cause`): the apply wrote nothing."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class ReadAhead:
    """What a step reads of each board before working on it, read for the next boards of the run at once
    (a few queries per batch instead of a few per board): their newest archived payloads (up to
    READ_AHEAD_BYTES), when their applied snapshot is from, and (job_diff) the expiry guard's history and
    whether any other source has boards (whether the apply looks for cross-source duplicates).
    It is at most one batch old when used, as a read just before the board's turn would be a moment old:
    neither is under the apply's lock."""

    covered: set[str] = field(default_factory=set)
    raws: dict[str, RawSnapshot] = field(default_factory=dict)
    applied: dict[str, datetime | None] = field(default_factory=dict)
    histories: dict[str, tuple[list[int], datetime | None]] = field(default_factory=dict)
    other_sources: bool | None = None

    @classmethod
    def of(cls, step: "LaneStep", board: str) -> "ReadAhead":
        position = step.position.get(board)
        window = [board] if position is None else step.order[position:position + SETTLE_BOARDS]
        raws, covered = step.store.latest_raws(step.spec.name, window, READ_AHEAD_BYTES)
        applying = step.stage == "job_diff"
        histories = step.store.guard_histories(step.spec.name, covered) if applying else {}
        return cls(set(covered), raws, step.store.last_snapshots(step.spec.name, covered), histories,
                   step.store.has_other_sources(step.spec.name) if applying else None)


@dataclass(frozen=True)
class Parser:
    """A board's archived payload with what its parse needs, parsed by calling it (`LaneStep.parser`)."""

    step: "LaneStep"
    raw: RawSnapshot
    company: str | None
    applied: datetime | None  # when the board's applied snapshot is from

    def __call__(self, known: KnownRecords | None = None) -> ParsedSnapshot:
        """The payload parsed (`known`: recognising the records of these jobs, for a connector that can);
        raises for a broken or stale one, and for one whose every record was refused."""
        raw, connector = self.raw, self.step.connector
        parsed = (connector.parse(raw.payload(), self.company, known=known) if known is not None
                  else connector.parse(raw.payload(), self.company))
        if parsed.snapshot_at and self.applied and parsed.snapshot_at < self.applied:
            raise StaleSnapshot(f"{raw.location}: snapshot of {parsed.snapshot_at.isoformat()} is older than "
                                f"the applied one of {self.applied.isoformat()}; skipped, the catalog is unchanged")
        if parsed.bad_records and not parsed.found:
            raise EveryRecordRefused(
                f"{raw.location}: every one of its {len(parsed.bad_records)} record(s) was refused (the first: "
                f"{parsed.bad_records[0].reason}); nothing applied, the records are kept aside in bad_records",
                raw, parsed.bad_records)
        return parsed


class LaneStep:
    """One step of a lane over the run's boards: the store, the connector, and each board's outcome."""

    def __init__(self, spec: SourceSpec, context: dg.AssetExecutionContext, stage: str):
        self.spec = spec
        self.context = context
        self.asset_key = dg.AssetKey([spec.name, stage])
        self.store: Store = context.resources.store.store()
        self._connector = None
        self._companies: dict[str, str] | None = None
        self.started = time.monotonic()
        self.failures: dict[str, str] = {}
        self.outcomes: dict[str, CheckOutcome] = {}
        self.stage = stage
        # the run's boards, read once: Dagster reads a dynamic partitions definition's every key from the
        # instance each time context.partition_keys is asked
        self.partition_keys: list[str] = list(context.partition_keys)
        self._in_run = set(self.partition_keys)
        self.sync_ids: dict[str, int] = {}  # each board's sync in this run, started by the run's first step
        self.journal = StepJournal(self.store.steps, context.log)
        self._logs: dict[str, StepLog] = {}
        self._recovering: set[str] | None = None
        self.clean: set[str] = set()  # boards job_diff found fetched and parsed without a bad record
        self._materialized: list[dg.AssetMaterialization] = []
        self._metadata: dict[str, dict] = {}  # by board, for the step's output
        self.order: list[str] = []  # the boards the step works on, in order (boards())
        self.position: dict[str, int] = {}  # each one's place in it
        self.ahead = ReadAhead()
        self._bad_records: dict[int, tuple[str, list]] = {}  # by raw snapshot id, until the next emit()

    @property
    def connector(self):
        if self._connector is None:
            self._connector = self.spec.connector(self.context.resources)
        return self._connector

    def company(self, board: str) -> str | None:
        """The board's company name in the registry, for sources whose payload names none; read once per
        step for all the run's boards (a backfill of thousands must not ask board by board)."""
        if not self.spec.board_registry:
            return None
        if self._companies is None:
            self._companies = self.store.boards.display_names(self.spec.name, self.partition_keys)
        return self._companies.get(board)

    def close(self) -> None:
        """Close the connector's HTTP connections, if this step opened any."""
        if self._connector is not None:
            self._connector.close()

    def boards(self) -> list[str]:
        """The run's boards that no earlier step has already ended (refused, failed or stale), each with
        its sync open (started now, with its steps planned, when this is the run's first step); the ended
        ones get their outcome from their syncs row."""
        ended = {s.board: s for s in self.store.syncs_for_run(self.context.run.run_id, self.spec.name)
                 if s.status != SyncStatus.RUNNING}
        for board, sync in ended.items():
            if board in self._in_run:
                self.outcomes[board] = ended_outcome(sync)
        boards = [b for b in self.partition_keys if b not in ended]
        self.sync_ids = self.store.steps.open_syncs(self.spec.name, boards, run_id=self.context.run.run_id,
                                                    plan=self.spec.steps.all())
        self.journal.load(self.sync_ids.values())
        self.order, self.position = boards, {board: i for i, board in enumerate(boards)}
        return boards

    def steps(self, board: str) -> StepLog:
        """The board's step reporter: sync_steps rows and one log line per change."""
        if board not in self._logs:
            self._logs[board] = StepLog(self.journal, self.sync_ids[board], f"{self.spec.name}/{board}")
        return self._logs[board]

    def trim_steps(self, board: str) -> int:
        """Keep the step details of the board's last N completed syncs (the syncs rows stay)."""
        return self.store.steps.keep_latest(self.spec.name, board, self.context.resources.sync_policy.step_history_syncs)

    def end_sync(self, board: str, status: str, **fields) -> None:
        """End the board's sync in this run (its steps not reached are skipped), or record one that had not
        started (a board already retired)."""
        if board in self.sync_ids:
            self.journal.flush()  # the ending reads the steps as they stand
            self.store.finish_sync(self.sync_ids[board], status, **fields)
            self.journal.load([self.sync_ids[board]])
        else:
            self.store.record_sync(self.spec.name, board, status, run_id=self.context.run.run_id, **fields)
        self.trim_steps(board)

    def archive(self, fetched: list[tuple[str, float, RawPayload]]) -> None:
        """Archive fetched boards' payloads ((board, its fetch's seconds, payload)) in one transaction
        (`Store.archive_raws`), then record each board's archive step, numbers and outcome. A batch whose
        archive fails is archived board by board, so that one board's trouble fails that board alone.
        Each board's archive step lasts its batch's archive; its duration counts its share of it."""
        if not fetched:
            return
        started = time.monotonic()
        stored = [(board, payload) for board, _, payload in fetched if not payload.not_modified]
        reported = not self.spec.steps.connector_reports  # a crawl's connector reports its own steps
        if reported:
            for board, _, _ in fetched:
                self.steps(board).start("archive")
        identical: dict[str, bool] = {}
        errors: dict[str, str] = {}
        try:
            archived = self.store.archive_raws(self.spec.name, [payload for _, payload in stored])
            identical = {board: known for (board, _), (_, known) in zip(stored, archived)}
        except Exception as exc:  # noqa: BLE001 - whose trouble it is shows board by board
            if len(stored) == 1:
                errors[stored[0][0]] = error_text(exc)
            else:
                for board, payload in stored:
                    try:
                        identical[board] = self.store.archive_raw(self.spec.name, payload)[1]
                    except Exception as own:  # noqa: BLE001 - one board's trouble stays its own
                        errors[board] = error_text(own)
        share = (time.monotonic() - started) / len(fetched)
        for board, fetching, payload in fetched:
            seconds = round(fetching + share, 3)
            if board in errors:
                error = f"archiving its payload failed: {errors[board]}"
                if reported:
                    self.steps(board).fail("archive", error)
                self.fail(board, error)
                self.report(board, None, {"failed": 1, "duration_seconds": seconds})
                continue
            same = payload.not_modified or identical[board]
            if reported:
                self.steps(board).finish("archive", {"identical_payload": int(same)})
            self.report(board, None, {"bytes": len(payload.body), "identical_payload": int(same),
                                      "not_modified": int(payload.not_modified), "failed": 0,
                                      "duration_seconds": seconds})
            self.outcomes[board] = CheckOutcome(
                True, "unchanged since the last fetch" if same else f"fetched {len(payload.body):,} bytes",
                routine=True)

    def not_found(self, board: str, exc: FetchError) -> None:
        """A board that answers 404 fails, and is retired (its jobs expired) after N in a row."""
        policy = self.context.resources.sync_policy
        self.journal.flush()  # the ending reads the steps as they stand
        status, expired = self.store.boards.not_found(self.spec.name, board, str(exc), run_id=self.context.run.run_id,
                                                      retire_after=policy.retire_after_not_found,
                                                      sync_id=self.sync_ids.get(board))
        if board in self.sync_ids:
            self.journal.load([self.sync_ids[board]])
        if status == BoardStatus.RETIRED:
            if expired or self.store.sync_result(self.sync_ids[board]).status == SyncStatus.RETIRED:
                error = f"{exc}: board retired, {expired} job(s) expired"  # its syncs row is written
                self.trim_steps(board)
            else:  # retired before this run (a hand-run partition): end it here, or the later steps would
                # re-apply its last archived payload and bring its expired jobs back
                error = f"{exc}: board already retired, nothing applied"
                self.end_sync(board, SyncStatus.RETIRED, error=error)
            self.failures[board] = error
            self.outcomes[board] = CheckOutcome(False, error)
            self.context.log.warning(f"{self.spec.name}/{board}: {error}")
        else:
            self.fail(board, f"{exc} (retired after {policy.retire_after_not_found} in a row)")

    def apply_failed(self, board: str, counts: dict[str, int], error: str) -> None:
        """End the board's started sync as failed: its apply rolled back, the row says why."""
        self.failures[board] = error
        self.outcomes[board] = CheckOutcome(False, error)
        self.end_sync(board, SyncStatus.FAILED, counts=counts, error=error)

    def fail(self, board: str, error: str, **fields) -> None:
        self.failures[board] = error
        self.outcomes[board] = CheckOutcome(False, error)
        self.end_sync(board, SyncStatus.FAILED, error=error, **fields)
        self.context.log.error(f"{self.spec.name}/{board}: {error}")

    def prepare(self, board: str, *, recognise: bool = False) -> tuple[RawSnapshot, ParsedSnapshot]:
        """The board's newest archived payload, parsed; raises for a missing, broken or stale one, and for
        one whose every record was refused. `recognise`: a connector that can (company files) recognises
        the records of the board's stored jobs, as the store has them, instead of parsing them again."""
        parse = self.parser(board)
        known = (self.store.known_records(self.spec.name, self.spec.jobs_board or board)
                 if recognise and self.recognises else None)
        return parse.raw, parse(known)

    def parser(self, board: str) -> "Parser":
        """The board's newest archived payload and what its parse needs of the store, read now: the parse
        itself reads nothing (inside an apply's transaction, a read of SQLite's would wait for its lock)."""
        return Parser(self, self.archived(board), self.company(board), self.read_ahead(board).applied.get(board))

    def archived(self, board: str) -> RawSnapshot:
        """The board's newest archived payload; raises when there is none."""
        raw = self.read_ahead(board).raws.get(board)
        if raw is None:
            raise BoardError(f"{self.spec.name}/{board}: nothing archived yet; materialize raw_snapshot first")
        return raw

    @property
    def recognises(self) -> bool:
        """Whether the connector can recognise a board's stored jobs by their records (company files)."""
        return getattr(self.connector, "recognises_known_records", False)

    def read_ahead(self, board: str) -> ReadAhead:
        """What the step reads of the board, read ahead with the boards after it in the run."""
        if board not in self.ahead.covered:
            self.ahead = ReadAhead.of(self, board)
        return self.ahead

    def prepared(self, board: str, started: float, *, recognise: bool = False) -> tuple[RawSnapshot, ParsedSnapshot] | None:
        """`prepare`, or None once a stale or broken snapshot has been recorded as the board's sync."""
        try:
            return self.prepare(board, recognise=recognise)
        except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
            self.not_prepared(board, started, exc)
        return None

    def not_prepared(self, board: str, started: float, exc: Exception) -> None:
        """Record why `prepare` gave the board nothing to apply: a stale snapshot, or its failure."""
        if isinstance(exc, StaleSnapshot):
            if self.stage == "postings":
                self.steps(board).skip(self.spec.steps.parse, str(exc))
            self.end_sync(board, SyncStatus.STALE, error=str(exc))
            self.outcomes[board] = CheckOutcome(True, f"skipped: {exc}", WARN)
            self.context.log.warning(str(exc))
            self.report(board, started, {"stale": 1, "failed": 0})
            return
        if isinstance(exc, EveryRecordRefused):
            self.store.keep_bad_records(exc.raw.id, self.spec.name, board, exc.records)
        self.fail(board, error_text(exc))
        self.report(board, started, {"failed": 1})

    def report(self, board: str, started: float | None, numbers: dict) -> None:
        """A board's numbers (the UI plots each board's history) and steps on its partition's materialization.
        `raw_snapshot` and `postings` materialize every board of the run (their one output, its metadata
        set per partition at the end); `job_diff` materializes the boards it applied, a batch at a time,
        so a failed, stale or held back board gets no point in its plots."""
        if started is not None:
            numbers = {**numbers, "duration_seconds": round(time.monotonic() - started, 3)}
        if self.stage != "job_diff":
            self._metadata[board] = {**numbers, **self.steps_metadata(board)}
            return
        if numbers.get("failed") or numbers.get("stale"):
            return
        self._materialized.append(dg.AssetMaterialization(asset_key=self.asset_key, partition=board,
                                                          metadata={**numbers, **self.steps_metadata(board)}))
        if len(self._materialized) >= SETTLE_BOARDS:
            self.emit()

    def keep_bad_records(self, raw: RawSnapshot, records: list) -> None:
        """Set the board's refused records aside (written with the next batch, `emit`)."""
        self._bad_records[raw.id] = (raw.board, records)

    def emit(self) -> None:
        """Write the step changes and refused records so far and log the materializations waiting."""
        self.store.keep_bad_records_of(self.spec.name, self._bad_records)
        self._bad_records = {}
        self.journal.flush()
        log_materializations(self.context, self._materialized)
        self._materialized = []

    def steps_metadata(self, board: str) -> dict:
        if board not in self.sync_ids:
            return {}
        return {"sync_id": self.sync_ids[board],
                **steps_metadata(self.journal.steps(self.sync_ids[board]), self.spec.steps.by_stage(self.stage))}

    def worth_recording(self, board: str, outcome: CheckOutcome) -> bool:
        """Whether a board's outcome is logged on its check: every one in a run of up to
        ROUTINE_OUTCOMES_UP_TO boards or in a run that fails (Dagster shows a check planned in a failed run
        and never evaluated as an execution failure; in a successful one, as skipped). In a larger run,
        every one but a routine pass, which is logged only for a board whose previous sync ended otherwise
        (failed, held back, stale, with bad records), to turn its check back to passed."""
        if not outcome.routine or self.failures or len(self.partition_keys) <= ROUTINE_OUTCOMES_UP_TO:
            return True
        if self._recovering is None:
            previous = self.store.previous_syncs(self.spec.name, self.partition_keys,
                                                 self.context.run.run_id)
            self._recovering = {board for board, sync in previous.items()
                                if sync.status != SyncStatus.SUCCESS or sync.counts.get("bad")}
        return board in self._recovering

    def record(self, asset_key: dg.AssetKey, check_name: str, outcomes: dict[str, CheckOutcome],
               blocking: bool = False) -> None:
        record(self.context, asset_key, check_name,
               [(board, outcome) for board, outcome in in_reporting_order(outcomes)
                if self.worth_recording(board, outcome)], blocking=blocking)

    def runs_stage(self, stage: str) -> bool:
        """Whether this run executes the lane's `stage` (a run may select any of the lane's assets)."""
        run = self.context.run
        if run.asset_selection:
            return dg.AssetKey([self.spec.name, stage]) in run.asset_selection
        steps = run.step_keys_to_execute or [node.name for node in self.context.job_def.nodes]
        return f"{self.spec.name}__{stage}" in steps

    def end_partial_syncs(self) -> None:
        """When the run selected no later step of the lane, its boards' syncs end here: `partial`, nothing
        applied (else they would show running forever)."""
        if any(self.runs_stage(stage) for stage in STAGES[STAGES.index(self.stage) + 1:]):
            return
        running = {s.id for s in self.store.syncs_for_run(self.context.run.run_id, self.spec.name)
                   if s.status == SyncStatus.RUNNING}
        for board, sync_id in self.sync_ids.items():
            if sync_id in running:
                self.end_sync(board, SyncStatus.PARTIAL,
                              error=f"the run selected no step after {self.stage}: nothing applied")

    def record_outcomes(self, asset_key: dg.AssetKey | None = None) -> None:
        outcomes = {board: self.outcomes.get(board) or CheckOutcome(False, "the step ended before this board")
                    for board in self.partition_keys}
        self.record(asset_key or self.asset_key, BOARD_OUTCOME, outcomes)

    def results(self, attempted: int):
        """The step's run-wide numbers, then every board's outcome; a step whose every board failed
        records the outcomes and fails, naming each board."""
        self.emit()
        if self.failures and len(self.failures) == attempted:
            self.record_outcomes()
            # the later steps are skipped: their checks get the boards' outcomes now, or the UI would
            # show checks that never ran as failed executions
            later = STAGES[STAGES.index(self.asset_key.path[-1]) + 1:]
            for stage in later:
                self.record_outcomes(dg.AssetKey([self.spec.name, stage]))
            if "job_diff" in later:
                self.record(dg.AssetKey([self.spec.name, "job_diff"]), MASS_EXPIRY_GUARD,
                            {board: not_evaluated(self.outcomes[board]) for board in self.partition_keys},
                            blocking=True)
            for stage in (self.stage, *later):  # none of them materializes: failed partitions, as a run plans them
                if self.runs_stage(stage):
                    plan_failed_partitions(self.context, dg.AssetKey([self.spec.name, stage]), list(self.failures))
            raise dg.Failure(description=_failure_text(self.failures), metadata={"failed": len(self.failures)})
        self.end_partial_syncs()
        add_partition_metadata(self.context, self.asset_key, self._metadata)
        yield dg.MaterializeResult(metadata={
            "boards_in_run": len(self.partition_keys), "failed_in_run": len(self.failures),
            "run_seconds": round(time.monotonic() - self.started, 3)})
        self.record_outcomes()  # after the materializations they check
        yield from check_outputs(self.context)


def in_reporting_order(outcomes: dict[str, CheckOutcome]) -> list[tuple[str, CheckOutcome]]:
    """Passed boards first: the UI summarizes a partitioned check by its latest evaluation, so a run
    with a failed board leaves the check red until a later run passes it."""
    return sorted(outcomes.items(), key=lambda item: item[1].passed, reverse=True)


def not_evaluated(outcome: CheckOutcome) -> CheckOutcome:
    """The guard's result for a board that never reached it: it passes (the guard did not stop it) and
    says why the board ended, so a check that never ran never shows as failed."""
    return CheckOutcome(True, "not evaluated: " + outcome.description, WARN, {"would_expire": 0})


def ended_outcome(sync: SyncResult) -> CheckOutcome:
    """A board's outcome as its syncs row in this run says it."""
    if sync.status == SyncStatus.STALE:
        return CheckOutcome(True, f"skipped: {sync.error}", WARN)
    if sync.status == SyncStatus.SUCCESS:
        return CheckOutcome(True, "synced")
    return CheckOutcome(False, f"{sync.status}: {sync.error or 'no reason recorded'}")


def _failure_text(failures: dict[str, str]) -> str:
    return f"{len(failures)} board(s) did not sync:\n" + "\n".join(f"- {b}: {e}" for b, e in failures.items())


def _synced_text(counts: dict[str, int]) -> str:
    return "synced: " + ", ".join(f"{counts.get(c, 0)} {c}" for c in DIFF_COUNTS)


def apply_board(step: LaneStep, board: str, config: JobDiffConfig, expiry: Expiry,
                guard_outcomes: dict[str, CheckOutcome]) -> dict | None:
    """Diff and apply one board's newest snapshot (one transaction); its numbers, or None when it ended
    otherwise (stale, broken, held back by the guard, failed), which its sync row and outcome record.

    A connector that recognises the board's stored jobs by their records (company files) parses inside the
    apply, with the known records of the state the apply reads under its lock: the board is read once.
    Nothing inside the apply reads or writes the store through a connection of its own (on SQLite it would
    wait for the apply's writer lock): the parse's reads come first (`LaneStep.parser`), the step journal
    holds its writes."""
    spec, context = step.spec, step.context
    started = time.monotonic()
    sync_id, steps = step.sync_ids[board], step.steps(board)
    counts: dict[str, int] = {}

    def parsed(snapshot: ParsedSnapshot) -> Recognised:
        counts.update(found=snapshot.found, bad=len(snapshot.bad_records), duplicates=len(snapshot.duplicates))
        if step.recognises:  # how many jobs were recognised by their records (none once parsed in full)
            counts["recognised"] = int(snapshot.postings["known"].sum()) if "known" in snapshot.postings else 0
        if spec.steps.check_duplicates:
            with steps.run(spec.steps.check_duplicates) as checking:
                checking.update(duplicates=len(snapshot.duplicates), already_known=step.store.count_known(
                    spec.name, spec.jobs_board or board, snapshot.postings["external_id"]))
        steps.start(spec.steps.apply)
        # ids of refused records (malformed, with a readable id) are still on the board: not expired
        return Recognised([snapshot.postings], snapshot.snapshot_at,
                          [r.external_id for r in snapshot.bad_records if r.external_id])

    def parsed_with(parse: Parser, known: KnownRecords) -> Recognised:
        try:
            snapshot = parse(known)
        except Exception as exc:  # noqa: BLE001 - told apart from the apply's own failures below
            raise NotParsed(exc) from exc
        return parsed(snapshot)

    # a feed expires jobs by age, never by what one fetch lists: nothing for the guard to hold back
    history = step.read_ahead(board).histories[board] if spec.complete_snapshots else None
    guard = (lambda diff: config.guard(history, counts["found"])(diff)) if spec.complete_snapshots else None

    def apply(chunks: list | Callable[[KnownRecords], Recognised], **parse) -> SnapshotDiff:
        with step.journal.held():  # a parse inside the apply reports its steps inside its transaction
            return step.store.apply_snapshot(spec.name, board, chunks, sync_id=sync_id, raw_snapshot_id=raw.id,
                                             counts=counts, guard=guard, expiry=expiry, jobs_board=spec.jobs_board,
                                             other_sources=step.read_ahead(board).other_sources, **parse)
    try:
        # parsed inside the apply unless a step before it reads the store (check_duplicates)
        if step.recognises and not spec.steps.check_duplicates:
            parse = step.parser(board)
            raw = parse.raw
            diff = apply(lambda known: parsed_with(parse, known))
        else:
            prepared = step.prepared(board, started)
            if prepared is None:
                return None
            raw, snapshot = prepared
            ready = parsed(snapshot)
            diff = apply(ready.chunks, snapshot_at=ready.snapshot_at, listed_ids=ready.listed_ids)
    except (NotParsed, BoardError) as exc:  # nothing archived, stale, broken: nothing was written
        step.not_prepared(board, started, exc.cause if isinstance(exc, NotParsed) else exc)
        return None
    except ExpiryRefused as refused:
        verdict = refused.verdict
        step.end_sync(board, SyncStatus.GUARDED, counts=counts, error=verdict.reason,
                      expiry_guard=verdict.decision, raw_snapshot_id=raw.id)
        context.log.error(f"{spec.name}/{board}: expiry guard: {verdict.reason}")
        step.outcomes[board] = CheckOutcome(False, f"held back by the expiry guard: {verdict.reason}")
        guard_outcomes[board] = CheckOutcome(False, verdict.reason, metadata={
            "would_expire": verdict.would_expire, "found": verdict.found, "decision": str(verdict.decision)})
        return None
    except BoardBusy as exc:  # another sync of the board held it too long: a reason, not a traceback
        step.apply_failed(board, counts, str(exc))
        context.log.error(f"{spec.name}/{board}: {exc}")
        return None
    except Exception as exc:  # the transaction rolled back; the sync row must still say why
        step.apply_failed(board, counts, f"applying the diff failed: {exc}")
        context.log.exception(f"{spec.name}/{board}: applying the diff failed")
        return None
    if not counts["bad"]:
        step.clean.add(board)
    # the apply counts cross-source duplicates after the diff: settle() adds them to the step
    steps.finish(spec.steps.apply, {"added": diff.counts()["new"], **diff.counts()})
    return {**counts, **diff.counts(), "duration_seconds": round(time.monotonic() - started, 3)}


def settle(step: LaneStep, applied: dict[str, dict], guard_outcomes: dict[str, CheckOutcome]) -> None:
    """End a batch of applied boards: their duplicate counts from their sync rows, the cleanup step (the
    step history trimmed), then each board's materialization with its numbers and steps."""
    if not applied:
        return
    spec, context = step.spec, step.context
    results = step.store.sync_results([step.sync_ids[board] for board in applied])
    removed = step.store.steps.keep_latest_of(spec.name, list(applied),
                                              context.resources.sync_policy.step_history_syncs)
    for board, numbers in applied.items():
        result, steps = results[step.sync_ids[board]], step.steps(board)
        duplicates = {c: result.counts[c] for c in ("cross_source_duplicates", "possible_duplicates")}
        step.journal.change(step.sync_ids[board], spec.steps.apply,
                            counts={"cross_source_duplicates": duplicates["cross_source_duplicates"]})
        with steps.run(spec.steps.cleanup) as cleaning:
            cleaning["step_rows_removed"] = removed[board]
        numbers = {**numbers, **duplicates}
        step.report(board, None, numbers)
        step.outcomes[board] = CheckOutcome(True, _synced_text(numbers), routine=True)
        guard_outcomes[board] = CheckOutcome(
            True, f"{result.expiry_guard}: applied" if result.expiry_guard else "nothing to hold back",
            metadata={"would_expire": numbers["expired"], "found": numbers["found"]}, routine=not result.expiry_guard)
    step.emit()


def build_source_lane(spec: SourceSpec) -> dg.Definitions:
    partitions = spec.partitions_def()
    # a backfill of up to that many boards is one run (settings.backfill_boards_per_run says why not more)
    backfill_policy = dg.BackfillPolicy.multi_run(settings.backfill_boards_per_run())
    # output_required=False: the check outputs are logged per partition (board_checks), not yielded
    common = dict(
        key_prefix=[spec.name], group_name=spec.name, owners=list(spec.owners), partitions_def=partitions,
        backfill_policy=backfill_policy, required_resource_keys={"store", "sync_policy", *spec.resource_keys},
        output_required=False)
    key = {stage: dg.AssetKey([spec.name, stage]) for stage in STAGES}

    # only the step that talks to the source's host holds its pool: parsing and applying never wait for it
    @dg.asset(name="raw_snapshot", kinds=set(spec.kinds), **({"pool": spec.pool} if spec.pool else {}),
              check_specs=[board_outcome_spec(key["raw_snapshot"], partitions, "fetch")],
              description=f"{spec.title}: {spec.payload}, archived in the store "
                          "(an identical payload is stored once).", **common)
    def raw_snapshot(context: dg.AssetExecutionContext):
        step = LaneStep(spec, context, "raw_snapshot")
        registry = step.store.boards
        step.store.ensure_boards(spec.name, step.partition_keys)  # a partition added by hand is a board too
        boards = step.boards()
        registry.attempted(spec.name, boards)
        plan = spec.steps
        answered: list[str] = []
        fetched: list[tuple[str, float, RawPayload]] = []  # archived a batch at a time (LaneStep.archive)
        held = 0  # their payloads' bytes
        try:
            for board in boards:
                started = time.monotonic()
                previous = step.read_ahead(board).raws.get(board)
                steps = step.steps(board)
                try:
                    if plan.connector_reports:  # a crawl: the connector tells its own steps as it goes
                        payload = step.connector.fetch(board, previous.payload() if previous else None,
                                                       progress=steps)
                    else:
                        with steps.run("fetch") as fetching:
                            payload = step.connector.fetch(board, previous.payload() if previous else None)
                            fetching.update(bytes=len(payload.body), not_modified=int(payload.not_modified))
                except FetchError as exc:
                    if exc.status == 404 and spec.board_registry:
                        step.not_found(board, exc)
                    else:
                        step.fail(board, error_text(exc))
                    step.report(board, started, {"failed": 1})
                    continue
                except Exception as exc:  # noqa: BLE001 - one board's trouble, whatever it is, stays its own
                    step.fail(board, error_text(exc))
                    step.report(board, started, {"failed": 1})
                    continue
                answered.append(board)
                if len(answered) >= SETTLE_BOARDS:  # the boards that answered are active again, a batch at a time
                    registry.answered(spec.name, *answered)
                    answered.clear()
                fetched.append((board, time.monotonic() - started, payload))
                held += len(payload.body)
                if len(fetched) >= ARCHIVE_BOARDS or held >= ARCHIVE_BYTES:
                    step.archive(fetched)
                    fetched, held = [], 0
            step.archive(fetched)
        finally:
            registry.answered(spec.name, *answered)
            step.close()
            step.journal.flush()
        yield from step.results(len(boards))

    @dg.asset(name="postings", kinds={"python", "pydantic"}, deps=[raw_snapshot],
              check_specs=[board_outcome_spec(key["postings"], partitions, "parse")],
              description=f"{spec.title}: each board's postings validated and normalized (mojibake repaired: "
                          "text_repairs); bad records counted and kept aside in `bad_records`, late snapshots "
                          "recorded as stale.", **common)
    def postings(context: dg.AssetExecutionContext):
        step = LaneStep(spec, context, "postings")
        boards = step.boards()
        for position, board in enumerate(boards, 1):
            if position % SETTLE_BOARDS == 0:
                step.emit()
            started = time.monotonic()
            step.steps(board).start(spec.steps.parse)
            # a recognised record was valid when its job was written, and is the same record: the numbers
            # are the same either way, but for text_repairs, which counts the records parsed this time
            prepared = step.prepared(board, started, recognise=True)
            if prepared is None:
                continue
            raw, parsed = prepared
            step.keep_bad_records(raw, parsed.bad_records)
            if parsed.duplicates:
                context.log.warning(f"{spec.name}/{board}: duplicate ids kept once: {parsed.duplicates[:20]}")
            step.steps(board).finish(spec.steps.parse, {"found": parsed.found, "bad": len(parsed.bad_records),
                                                        "duplicates": len(parsed.duplicates)})
            shown = {"bad_records": dg.MetadataValue.json([{"position": r.position, "id": r.external_id, "reason": r.reason}
                                                           for r in parsed.bad_records[:50]])} if parsed.bad_records else {}
            step.report(board, started, {"found": parsed.found, "bad": len(parsed.bad_records),
                                         "duplicates": len(parsed.duplicates), "inactive": parsed.inactive,
                                         "text_repairs": parsed.repaired, "stale": 0, "failed": 0, **shown})
            # bad records are a warning on the board's partition: its good postings still sync
            step.outcomes[board] = CheckOutcome(
                not parsed.bad_records, f"{parsed.found} posting(s), {len(parsed.bad_records)} bad record(s) kept "
                "aside in bad_records", WARN, {"found": parsed.found, "bad": len(parsed.bad_records)},
                routine=not parsed.bad_records)
        yield from step.results(len(boards))

    @dg.asset(name="job_diff", kinds={"python", "sql"}, deps=[postings],
              check_specs=[board_outcome_spec(key["job_diff"], partitions, "sync"), dg.AssetCheckSpec(
                  MASS_EXPIRY_GUARD, asset=key["job_diff"], partitions_def=partitions, blocking=True,
                  description="Holds back a diff that would expire most of a board after a suspicious shrink, "
                              "or all of it after one empty answer: the board's diff is not applied and its "
                              "syncs row says why. Passes for boards it did not need to stop.")],
              description=f"{spec.title}: each board's snapshot diffed against the store (new, changed, "
                          "unchanged, expired, reactivated; a feed's postings already past their own expiry "
                          "date are already_expired, not added) and applied in one transaction; only applied "
                          "boards are materialized.", **common)
    def job_diff(context: dg.AssetExecutionContext, config: JobDiffConfig):
        step = LaneStep(spec, context, "job_diff")
        expiry = COMPLETE if spec.complete_snapshots else Expiry(
            complete=False, max_age=timedelta(days=context.resources.sync_policy.feed_max_age_days))
        guard_outcomes: dict[str, CheckOutcome] = {}
        boards = step.boards()
        for first in range(0, len(boards), SETTLE_BOARDS):
            applied: dict[str, dict] = {}  # each applied board's numbers, settled with the others of its batch
            for board in boards[first:first + SETTLE_BOARDS]:
                numbers = apply_board(step, board, config, expiry, guard_outcomes)
                if numbers is not None:
                    applied[board] = numbers
            settle(step, applied, guard_outcomes)
        step.emit()
        failed = {s.board: f"{s.status}: {s.error or 'no reason recorded'}"
                  for s in step.store.syncs_for_run(context.run.run_id, spec.name) if s.status in RUN_FAILING}
        if failed:
            step.failures.update(failed)  # the run fails: every outcome is recorded (worth_recording)
            # the earlier steps left out their routine passes, as if the run would succeed
            for stage in ("raw_snapshot", "postings"):
                if step.runs_stage(stage):
                    passed = CheckOutcome(True, "fetched" if stage == "raw_snapshot" else "parsed, no bad record",
                                          routine=True)
                    step.record(key[stage], BOARD_OUTCOME, dict.fromkeys(step.clean, passed))
        step.record_outcomes()
        guard_outcomes = {board: guard_outcomes.get(board) or not_evaluated(step.outcomes[board])
                          for board in step.partition_keys}
        step.record(key["job_diff"], MASS_EXPIRY_GUARD, guard_outcomes, blocking=True)
        if failed:  # every board's outcome is recorded; the run still fails, naming every board that did not sync
            plan_failed_partitions(context, key["job_diff"], list(failed))
            raise dg.Failure(description=_failure_text(failed), metadata={"failed": len(failed)})
        yield from check_outputs(context)

    job = dg.define_asset_job(name=f"{spec.name}_sync", selection=dg.AssetSelection.groups(spec.name),
                              config=console.RUN_CONFIG,
                              description=f"Sync {spec.title.lower()}: fetch, normalize and diff each board.")
    schedules = [build_stalest_first_schedule(spec, job, partitions)] if spec.cron else []
    return dg.Definitions(assets=[raw_snapshot, postings, job_diff], jobs=[job], schedules=schedules,
                          sensors=spec.automation(spec, job, partitions))


def build_stalest_first_schedule(spec: SourceSpec, job, partitions: dg.PartitionsDefinition):
    @dg.schedule(name=f"{spec.name}_sync_schedule", cron_schedule=spec.cron, job=job,
                 execution_timezone="Europe/London",
                 description=f"Syncs the stalest {spec.title.lower()} first, a batch per tick, one run per "
                             "contiguous range of the boards it picked (stopped until a deployment starts it).")
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
        return [dg.RunRequest(run_key=f"{spec.name}:{tick}:{start}", tags=range_tags(start, end),
                              run_config=console.RUN_CONFIG)
                for start, end in contiguous_ranges(known, batch)]

    return stalest_first
