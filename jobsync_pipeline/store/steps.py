"""Each sync's steps (`sync_steps`): the plan written when a sync starts, each step's progress as it
runs, and the history limit (the last N completed syncs of a board keep their steps)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa

from jobsync_pipeline.core.status import SYNC_COUNTS, SyncStatus
from jobsync_pipeline.core.steps import StepStatus, SyncStep
from jobsync_pipeline.store.tables import sync_steps, syncs
from jobsync_pipeline.store.time import as_utc, utcnow

DEFAULT_KEEP_SYNCS = 50


class StepStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def open_syncs(self, source: str, boards: Sequence[str], *, run_id: str, plan: Sequence[str],
                   at: datetime | None = None) -> dict[str, int]:
        """Each board's sync in this run: the one already running (an earlier step of the run started it),
        else a new `running` syncs row with its steps planned `pending`. One transaction for all boards,
        so a backfill of thousands pays for one."""
        boards = list(dict.fromkeys(boards))
        if not boards:
            return {}
        now = at or utcnow()
        with self.engine.begin() as conn:
            found = dict(conn.execute(sa.select(syncs.c.board, sa.func.max(syncs.c.id)).where(
                syncs.c.run_id == run_id, syncs.c.source == source, syncs.c.status == SyncStatus.RUNNING)
                .group_by(syncs.c.board)).all())
            fresh = [b for b in boards if b not in found]
            if fresh:
                # one statement for every board (insertmanyvalues), ids in the order given
                created = dict(conn.execute(syncs.insert().returning(syncs.c.board, syncs.c.id, sort_by_parameter_order=True), [
                    {"source": source, "board": board, "run_id": run_id, "status": SyncStatus.RUNNING,
                     "started_at": now, **{c: 0 for c in SYNC_COUNTS}} for board in fresh]).all())
                conn.execute(sync_steps.insert(), [
                    {"sync_id": created[board], "position": position, "name": name, "status": StepStatus.PENDING,
                     "counts": "{}", "updated_at": now}
                    for board in fresh for position, name in enumerate(plan)])
                found.update(created)
        return {board: found[board] for board in boards}

    def update(self, sync_id: int, name: str, *, status: str | None = None, done: int | None = None,
               total: int | None = None, counts: Mapping[str, int] | None = None, error: str | None = None,
               started: bool = False, finished: bool = False) -> None:
        """Move one step on (`SyncStep.change`); `counts` are merged into what it counted so far. A step the
        plan lacks (a connector reporting one of its own) is added at the end."""
        with self.engine.begin() as conn:
            steps = {row.name: _step(row) for row in conn.execute(
                sa.select(sync_steps).where(sync_steps.c.sync_id == sync_id))}
            step = steps.get(name) or SyncStep(sync_id=sync_id, name=name, position=max(
                (s.position for s in steps.values()), default=-1) + 1)
            step.change(at=utcnow(), status=status, done=done, total=total, counts=counts, error=error,
                        started=started, finished=finished)
            self._write(conn, [step] if name in steps else [], [] if name in steps else [step])

    def write(self, changed: Sequence[SyncStep], added: Sequence[SyncStep] = ()) -> None:
        """Write steps as they stand (their whole row: the caller merged the counts), in one transaction:
        `changed` ones exist, `added` ones (a step the plan lacks, reported by a connector) are new. A lane
        writes its boards' step changes this way, a batch at a time, instead of a transaction per change."""
        if not changed and not added:
            return
        with self.engine.begin() as conn:
            self._write(conn, changed, added)

    @staticmethod
    def _write(conn: sa.Connection, changed: Sequence[SyncStep], added: Sequence[SyncStep]) -> None:
        now = utcnow()
        if added:
            conn.execute(sync_steps.insert(), [{"sync_id": s.sync_id, "position": s.position, "name": s.name,
                                                **_columns(s, now)} for s in added])
        if changed:
            conn.execute(sync_steps.update().where(
                sync_steps.c.sync_id == sa.bindparam("sync_id_"), sync_steps.c.position == sa.bindparam("position_"))
                .values({c: sa.bindparam(c) for c in _COLUMNS}),
                [{"sync_id_": s.sync_id, "position_": s.position, **_columns(s, now)} for s in changed])

    def steps(self, sync_id: int) -> list[SyncStep]:
        return self.for_syncs([sync_id]).get(sync_id, [])

    def for_syncs(self, sync_ids: Iterable[int]) -> dict[int, list[SyncStep]]:
        ids = list(sync_ids)
        found: dict[int, list[SyncStep]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 1000):
                for row in conn.execute(sa.select(sync_steps).where(sync_steps.c.sync_id.in_(ids[start:start + 1000]))
                                        .order_by(sync_steps.c.sync_id, sync_steps.c.position)):
                    found.setdefault(row.sync_id, []).append(_step(row))
        return found

    @staticmethod
    def end(conn: sa.Connection, sync_id: int, error: str | None) -> None:
        """A sync ended: a step still running failed with the sync's error (or was interrupted), and the
        steps it never reached are skipped."""
        now = utcnow()
        conn.execute(sync_steps.update().where(sync_steps.c.sync_id == sync_id,
                                               sync_steps.c.status == StepStatus.RUNNING)
                     .values(status=StepStatus.FAILED, error=(error or "the sync ended while this step ran")[:4000],
                             finished_at=now, updated_at=now))
        conn.execute(sync_steps.update().where(sync_steps.c.sync_id == sync_id,
                                               sync_steps.c.status == StepStatus.PENDING)
                     .values(status=StepStatus.SKIPPED, updated_at=now))

    def keep_latest(self, source: str | None, board: str | None, keep: int = DEFAULT_KEEP_SYNCS) -> int:
        """Remove the step details of each board's completed syncs older than its newest `keep` (of one
        board, of one source, or of all when None); returns the rows removed. A running sync keeps its
        steps whatever its age."""
        where = [syncs.c.status != SyncStatus.RUNNING]
        if source is not None:
            where.append(syncs.c.source == source)
        if board is not None:
            where.append(syncs.c.board == board)
        ranked = sa.select(syncs.c.id, sa.func.row_number().over(
            partition_by=(syncs.c.source, syncs.c.board), order_by=syncs.c.id.desc()).label("newest")).where(
            *where).subquery()
        beyond = sa.select(ranked.c.id).where(ranked.c.newest > keep)
        with self.engine.begin() as conn:
            return conn.execute(sync_steps.delete().where(sync_steps.c.sync_id.in_(beyond))).rowcount

    def keep_latest_of(self, source: str, boards: Sequence[str], keep: int = DEFAULT_KEEP_SYNCS) -> dict[str, int]:
        """`keep_latest` for these boards of a source, in one transaction: the step rows removed, by board."""
        removed: dict[str, int] = dict.fromkeys(boards, 0)
        with self.engine.begin() as conn:
            for start in range(0, len(boards), 500):  # bounded IN lists, whatever the run's size
                ranked = sa.select(syncs.c.id, syncs.c.board, sa.func.row_number().over(
                    partition_by=syncs.c.board, order_by=syncs.c.id.desc()).label("newest")).where(
                    syncs.c.status != SyncStatus.RUNNING, syncs.c.source == source,
                    syncs.c.board.in_(boards[start:start + 500])).subquery()
                beyond = dict(conn.execute(sa.select(ranked.c.id, ranked.c.board).where(ranked.c.newest > keep)).all())
                ids = list(beyond)
                for first in range(0, len(ids), 1000):
                    for sync_id in conn.scalars(sync_steps.delete().where(sync_steps.c.sync_id.in_(ids[first:first + 1000]))
                                                .returning(sync_steps.c.sync_id)):
                        removed[beyond[sync_id]] += 1
        return removed


_COLUMNS = ("status", "done", "total", "counts", "error", "started_at", "finished_at", "updated_at")


def _columns(step: SyncStep, now: datetime) -> dict:
    return {"status": step.status, "done": step.done, "total": step.total,
            "counts": json.dumps({k: int(v) for k, v in step.counts.items()}),
            "error": step.error[:4000] if step.error else step.error, "started_at": step.started_at,
            "finished_at": step.finished_at, "updated_at": now}


def _step(row) -> SyncStep:
    return SyncStep(sync_id=row.sync_id, position=row.position, name=row.name, status=row.status, done=row.done,
                    total=row.total, counts=json.loads(row.counts or "{}"), error=row.error,
                    started_at=as_utc(row.started_at), finished_at=as_utc(row.finished_at))
