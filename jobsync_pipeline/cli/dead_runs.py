"""Runs the CLI launched whose process is gone (killed, crashed): found and ended before a new sync; and a
bounded wait for a host's pool slot instead of an endless one.

The CLI runs its jobs in its own process. Killed with -9, it leaves its run STARTED and any pool slot
its steps claimed taken, so every later sync of that host waits for a slot that is never freed. Each
CLI run is tagged with its host and process id; before launching, the CLI ends this host's runs whose
process no longer exists: the run is marked failed, its pool slots freed, and its `syncs` rows still
`running` end as failed, `interrupted`. Runs launched by the daemon are run monitoring's to end.
"""
from __future__ import annotations

import os
import socket
import time

HOST_TAG, PID_TAG = "jobsync/host", "jobsync/pid"


def launch_tags() -> dict[str, str]:
    """The tags that let a later CLI know whether the process running this run is still alive."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def end_dead_runs(instance, store) -> list[str]:
    """End this host's CLI runs whose process is gone; returns their run ids."""
    import dagster as dg

    ended = []
    host = socket.gethostname()
    records = instance.get_run_records(dg.RunsFilter(
        statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING],
        tags={HOST_TAG: host}))
    for record in records:
        run = record.dagster_run
        pid = int(run.tags.get(PID_TAG, "0") or 0)
        if not pid or pid == os.getpid() or _alive(pid):
            continue
        reason = f"the jobsync process (pid {pid}) running it is gone"
        instance.report_run_failed(run, message=f"{reason}: the run was interrupted")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        store.interrupt_syncs(run.run_id, reason)
        ended.append(run.run_id)
    return ended


def wait_for_pool(instance, pool: str, seconds: float, poll: float = 1.0) -> None:
    """Return once the pool has a free slot; after `seconds` raise CommandError naming the runs that
    hold it (Dagster itself would wait without end for a slot a live but stuck run holds)."""
    from jobsync_pipeline.cli.runtime import CommandError

    deadline = time.monotonic() + seconds
    while True:
        info = instance.event_log_storage.get_concurrency_info(pool)
        if info.limit is None or len(info.claimed_slots) < info.limit:
            return
        if time.monotonic() >= deadline:
            holders = ", ".join(sorted(info.active_run_ids)) or "unknown runs"
            raise CommandError(f"the {pool} pool has no free slot after {seconds:g} s: held by {holders}; "
                               "end a stuck run in the Dagster UI, or wait longer with --pool-wait "
                               "(JOBSYNC_POOL_WAIT_SECONDS)")
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
