"""The scheduled cleanup: the store's limits (`store/retention.py`) and Dagster's own run history, each
limit in the launchpad and each count in the step's metadata. The daemon purges schedule and sensor
ticks itself, by the `retention` settings of dagster.yaml."""
from datetime import timedelta

import dagster as dg
from pydantic import Field

from jobsync_pipeline.defs import console
from jobsync_pipeline.defs.resources import StoreResource
from jobsync_pipeline.store.retention import Retention, RetentionPolicy
from jobsync_pipeline.store.time import utcnow

FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class RetentionConfig(dg.Config):
    raw_snapshot_days: float = Field(default=14, gt=0, description=(
        "Raw snapshots older than this are removed, except each board's latest and any a running sync reads."))
    job_event_days: float = Field(default=180, gt=0, description="job_events older than this are removed.")
    bad_record_days: float = Field(default=30, gt=0, description="Bad records (by their snapshot's age) older than this.")
    step_history_syncs: int = Field(default=50, ge=1, description=(
        "Each board keeps the step details of this many latest completed syncs (the syncs rows stay)."))
    expired_job_days: float = Field(default=365, gt=0, description=(
        "Jobs expired longer ago than this are removed, their events first; one an unsent notification names stays."))
    dagster_run_days: float = Field(default=90, gt=0, description=(
        "Finished Dagster runs (and their event logs) older than this are deleted from the instance."))

    def policy(self) -> RetentionPolicy:
        return RetentionPolicy(raw_snapshots=timedelta(days=self.raw_snapshot_days),
                               job_events=timedelta(days=self.job_event_days),
                               bad_records=timedelta(days=self.bad_record_days), step_syncs=self.step_history_syncs,
                               expired_jobs=timedelta(days=self.expired_job_days))


def delete_old_runs(instance: dg.DagsterInstance, older_than: timedelta, batch: int = 500) -> int:
    """Delete finished runs last updated before the cutoff; a running or queued run is never touched."""
    cutoff, deleted = utcnow() - older_than, 0
    while True:
        records = instance.get_run_records(filters=dg.RunsFilter(statuses=FINISHED, updated_before=cutoff),
                                           limit=batch)
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
        deleted += len(records)
        if len(records) < batch:
            return deleted


@dg.op(description="Removes what is past its limit from the store and the instance, and reports the counts.")
def apply_retention(context: dg.OpExecutionContext, config: RetentionConfig, store: StoreResource) -> dg.Output:
    removed = Retention(store.store().engine, config.policy()).run()
    removed["dagster_runs"] = delete_old_runs(context.instance, timedelta(days=config.dagster_run_days))
    context.log.info("removed: " + ", ".join(f"{n} {what}" for what, n in removed.items()))
    limits = {f"limit_{k}": v for k, v in config.model_dump().items()}
    return dg.Output(removed, metadata={**{f"removed_{k}": v for k, v in removed.items()}, **limits})


@dg.job(name="retention", config=console.RUN_CONFIG,
        description="The scheduled cleanup: old raw snapshots, job events, bad records, step details, long-expired "
                    "jobs and Dagster runs.")
def retention():
    apply_retention()


# the local store and instance only: on by default
retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule", job=retention, cron_schedule="40 4 * * *", execution_timezone="Europe/London",
    default_status=dg.DefaultScheduleStatus.RUNNING, run_config=console.RUN_CONFIG,
    description="Runs the cleanup daily at 04:40, when no source is scheduled to start.")

defs = dg.Definitions(jobs=[retention], schedules=[retention_schedule])
