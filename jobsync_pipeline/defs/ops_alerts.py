"""Operator alerts through apprise (`JOBSYNC_OPS_CHANNELS`): a failed run, a source whose success rate over
the last hour falls below a threshold, a stale source, a queue whose oldest pending item is too old, the
mass-expiry guard holding a board back. `ops_alerts_sensor` evaluates them every minute; the store
dedupes them (at most one per condition per hour) and sends a recovery message when one clears. Without
channels, alerts are only logged."""
from datetime import timedelta

import dagster as dg
from pydantic import Field

from jobsync_pipeline import settings
from jobsync_pipeline.core.ops_alerts import (AlertPolicy, Condition, failed_run_conditions, guard_conditions,
                                              queue_conditions, source_conditions)
from jobsync_pipeline.defs.resources import StoreResource
from jobsync_pipeline.defs.source_specs import SOURCE_SPECS
from jobsync_pipeline.notify.send import send
from jobsync_pipeline.store.health import HealthStore
from jobsync_pipeline.store.ops_alerts import Announcement, OpsAlertStore
from jobsync_pipeline.store.time import as_utc, utcnow

# Runs looked at for failures: those that ended within this long (a job failing once a day still shows).
RUN_LOOKBACK = timedelta(days=1)


class OpsAlertsResource(dg.ConfigurableResource):
    """Where operator alerts go and when they fire."""

    channels: str | None = Field(default=None, description=(
        "Apprise URLs, comma-separated. Leave unset to read JOBSYNC_OPS_CHANNELS (they hold credentials); "
        "with none, alerts are only logged."))
    min_success_rate: float = Field(default=0.8, ge=0, le=1, description=(
        "Alert when a source's share of successful syncs over the last hour falls below this (at least 3 syncs)."))
    max_queue_age_minutes: float = Field(default=30, gt=0, description=(
        "Alert when a queue's oldest pending item (a search run, a due notification or follow-up) is older."))
    repeat_minutes: float = Field(default=60, gt=0, description="At most one alert per condition this often.")

    def urls(self) -> list[str]:
        if self.channels is not None:
            return [url.strip() for url in self.channels.split(",") if url.strip()]
        return settings.ops_channels()

    def policy(self) -> AlertPolicy:
        return AlertPolicy(min_success_rate=self.min_success_rate,
                           max_queue_age=timedelta(minutes=self.max_queue_age_minutes),
                           repeat_every=timedelta(minutes=self.repeat_minutes))


def holding_conditions(instance: dg.DagsterInstance, health: HealthStore, policy: AlertPolicy, now) -> list[Condition]:
    intervals = {spec.name: spec.interval for spec in SOURCE_SPECS}
    week = health.recent_syncs(now)  # the last hour's syncs are the newest of the week's: read once
    hour = week[week["started_at"].map(as_utc) >= now - timedelta(hours=1)]
    return [*failed_run_conditions(failed_jobs(instance, now)),
            *source_conditions(health.sources(intervals, now, window=timedelta(hours=1), recent=hour),
                               health.sources(intervals, now, recent=week), now, policy),
            *queue_conditions(health.queues(now), now, policy),
            *guard_conditions(health.held_by_guard())]


def failed_jobs(instance: dg.DagsterInstance, now) -> dict[str, str]:
    """Jobs whose latest run that ended within the lookback failed: job → which run."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                              updated_after=now - RUN_LOOKBACK), limit=1000)
    latest: dict[str, dg.DagsterRun] = {}
    for record in sorted(records, key=lambda r: r.end_time or 0):
        if record.dagster_run.tags.get("dagster/will_retry") == "true":
            continue  # the daemon re-launches it: its retry's outcome is the one to judge
        latest[record.dagster_run.job_name] = record.dagster_run
    return {job: f"run {run.run_id} (see it in the UI: Runs)" for job, run in latest.items()
            if run.status == dg.DagsterRunStatus.FAILURE}


def announce(announcements: list[Announcement], urls: list[str], log) -> int:
    """Send each announcement to every channel; returns how many sends failed (each logged)."""
    failed = 0
    for item in announcements:
        title = {"alert": "jobsync alert", "repeat": "jobsync alert (still)", "recovered": "jobsync recovered"}[item.kind]
        if item.kind == "recovered":
            log.info(f"{title}: {item.message}")
        else:
            log.warning(f"{title}: {item.message}")
        for url in urls:
            problem = send(url, title, item.message, allow=settings.notify_allow_hosts())
            if problem:
                failed += 1
                log.error(f"ops alert not delivered to a channel: {problem}")
    return failed


@dg.sensor(name="ops_alerts_sensor", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Evaluates the operator alerts every minute (failed runs, success rate over the last hour, "
                       "stale sources, old queue items, boards the expiry guard holds back) and sends new, repeated "
                       "(hourly) and recovered ones to JOBSYNC_OPS_CHANNELS; without channels it only logs them.")
def ops_alerts_sensor(context: dg.SensorEvaluationContext, store: StoreResource, ops_alerts: OpsAlertsResource):
    now = utcnow()
    policy = ops_alerts.policy()
    engine = store.store().engine
    holding = holding_conditions(context.instance, HealthStore(engine), policy, now)
    announcements = OpsAlertStore(engine).transition(holding, now=now, repeat_every=policy.repeat_every)
    failed = announce(announcements, ops_alerts.urls(), context.log)
    return dg.SkipReason(f"{len(holding)} condition(s) holding; {len(announcements)} announced"
                         + (f", {failed} send(s) failed" if failed else ""))


defs = dg.Definitions(sensors=[ops_alerts_sensor], resources={"ops_alerts": OpsAlertsResource()})
