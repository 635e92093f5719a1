"""Where the runs' steps execute, chosen by JOBSYNC_EXECUTOR when the definitions are built.

Unset (or `multiprocess`): Dagster's default executor, a process per step beside the run's own, as
before. `celery`: dagster-celery's executor (the `celery` extra); the run's process only orchestrates,
each step is a Celery task that a worker (`dagster-celery worker start`, deploy/celery/) executes, over
the Redis broker at JOBSYNC_CELERY_BROKER_URL. The executor is the whole Definitions' default: the lane
jobs and also the implicit asset job that asset backfills and the UI's materializations run (a backfill
split by JOBSYNC_BACKFILL_BOARDS_PER_RUN is runs of that job, not of `{source}_sync`). Jobs that name
their own executor (search_run and the notification jobs: in process) keep it.

The URLs are passed as `{"env": ...}` when set, so Dagster reads them in the run's process and a
password in one is never part of the definitions.
"""
from __future__ import annotations

import dagster as dg

from jobsync_pipeline import settings

# What the executor's Celery app (it sends the step tasks) and the workers (deploy/celery/celery.yaml, whose
# config_source must say the same: a test holds them equal) run with. Why each:
# - task_acks_late: a worker acknowledges a step's task when the step ended, not when it took it. A worker
#   that dies mid-step (killed, its machine gone) leaves the task unacknowledged in Redis, and another worker
#   runs the step again once visibility_timeout has passed; acknowledged on receipt, the task would be lost
#   and the run would wait for its result for ever.
# - task_reject_on_worker_lost False (Celery's default, said out loud): when only the pool process running
#   a step dies (the OOM killer picks the biggest), the task fails with WorkerLostError instead of going
#   back to the queue, so a step that kills its process every time cannot loop; the run fails and the
#   daemon's run retries (deploy/dagster.yaml, at most 2) re-execute it from the failed step.
# - worker_prefetch_multiplier 1: a worker holds only the steps it runs, so a queued step goes to whichever
#   worker is free (and a dead worker strands nothing it had not started).
# - visibility_timeout: how long an unacknowledged task waits before Redis gives it to another worker. It
#   must be longer than any step runs, or a slow step is started a second time while the first still runs
#   (harmless for the catalog, each board's apply is exclusive, but every request is made twice). One hour;
#   the step of a backfill run of JOBSYNC_BACKFILL_BOARDS_PER_RUN boards takes minutes.
# - unacked_restore_interval / _throttle: how often workers look for such tasks (every 10 s; kombu's default
#   of every 10th look of 10 s would add up to 100 s to a lost step's wait).
# - the rest is dagster-celery's own broker_transport_options (the executor's config replaces them whole).
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": False,
    "worker_prefetch_multiplier": 1,
    "broker_transport_options": {
        "visibility_timeout": 3600,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
}


def build_executor() -> dg.ExecutorDefinition | None:
    """The Definitions' executor for JOBSYNC_EXECUTOR (None: Dagster's default); raises settings.ConfigError
    for an unknown value, or for celery without the celery extra installed."""
    if settings.executor() != "celery":
        return None
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise settings.ConfigError(f"{settings.EXECUTOR_VAR}=celery needs dagster-celery: install "
                                   "jobsync-pipeline[celery]") from exc
    broker = ({"env": settings.CELERY_BROKER_URL_VAR} if settings.celery_broker_url_set()
              else settings.DEFAULT_CELERY_BROKER_URL)
    backend = {"env": settings.CELERY_BACKEND_URL_VAR} if settings.celery_backend_url_set() else broker
    return celery_executor.configured(
        {"broker": broker, "backend": backend, "config_source": CELERY_SETTINGS}, name="celery",
        description="Each step is a Celery task run by a dagster-celery worker (deploy/celery/); the run's own "
                    "process only orchestrates.")
