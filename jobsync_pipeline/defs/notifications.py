"""Alerts in Dagster: the `notification_batches` asset (one partition per hour window) matches a window's
new jobs against users' saved searches, built by a sensor as new jobs arrive; a sensor launches the
`deliver_notifications` job while
notifications are due; a schedule runs the alert follow-ups every minute they are due; a daily job
removes what was delivered days ago. The queues themselves are `store/notifications.py` and
`store/alerts.py`; `jobsync notifications deliver` and `jobsync followups run` call the same functions."""

import time
from datetime import datetime, timedelta

import dagster as dg

from jobsync_pipeline.defs.resources import NotifyResource, StoreResource
from jobsync_pipeline.notify.render import digest_message
from jobsync_pipeline.notify.send import send, write_outbox
from jobsync_pipeline.store import Store
from jobsync_pipeline.store.alerts import UNCONFIRMED, new_confirm_token
from jobsync_pipeline.store.notifications import Claim, deliver_pass
from jobsync_pipeline.store.time import utcnow

# Hour windows in UTC; the window holding now is a partition too (end_offset), so a window is built as
# its jobs arrive and again when more arrive: nothing is notified twice.
WINDOWS = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", timezone="UTC", end_offset=1)
OWNERS = ["team:alerts"]


@dg.asset(key_prefix="notifications", group_name="notifications", partitions_def=WINDOWS, kinds={"python", "sql"},
          owners=OWNERS,
          deps=[dg.AssetKey(["catalog"]), dg.AssetDep(dg.AssetKey(["searches", "search_results"]))],
          description="The window's new and reactivated canonical jobs (from the catalog every lane feeds, and the live "
                      "sites' postings that search runs apply) matched against every saved search of users whose "
                      "alerts are on, with the database's search; one notification per saved search × job, "
                      "grouped into one digest per user, due on the user's digest schedule. Building a window "
                      "again, or backfilling it, creates nothing twice.")
def notification_batches(context: dg.AssetExecutionContext, store: StoreResource, notify: NotifyResource
                         ) -> dg.MaterializeResult:
    window = context.partition_time_window
    started = time.perf_counter()
    built = store.store().notifications(max_retries=notify.max_retries).build(window.start, window.end)
    context.log.info(f"window {window.start:%Y-%m-%d %H:%M}: {built.jobs} new job(s), {built.searches} saved "
                     f"search(es), {built.created} new notification(s) for {built.users} user(s)")
    return dg.MaterializeResult(metadata={
        "window_jobs": built.jobs, "saved_searches": built.searches, "matches": built.created,
        "users": built.users, **{status: count for status, count in built.totals.items()},
        "duration_seconds": round(time.perf_counter() - started, 3)})


def deliver_due(store: Store, notify: NotifyResource, now: datetime | None = None, log=None) -> dict[str, int]:
    """One delivery pass: each user's due notifications as one digest to each of their channels (the dev
    outbox when they have none and it is configured). What the Dagster job and `jobsync notifications
    deliver` run."""
    now = now or utcnow()
    alerts = store.alerts(notify.timings())

    def send_claim(claim: Claim, channels: list[tuple[int, str, str]]) -> list[tuple[int | None, str | None]]:
        token = new_confirm_token() if claim.alert_status == UNCONFIRMED else None
        title, body = digest_message(claim.items, confirm_token=token, email=claim.email)
        outcomes = _to_channels(notify, channels, claim.email, claim.key, title, body, now,
                                log, what=f"digest of {len(claim.items)} job(s)")
        if token and any(error is None for _, error in outcomes):  # it reached them: the token counts
            alerts.keep_confirm_token(claim.user_id, token)
        return outcomes

    return deliver_pass(store.notifications(max_retries=notify.max_retries,
                                            lease=timedelta(minutes=notify.lease_minutes)),
                        send_claim, now, per_user=notify.per_user, users_per_pass=notify.users_per_pass)


def run_followups(store: Store, notify: NotifyResource, now: datetime | None = None) -> dict[str, int]:
    """One follow-up pass (the schedule's, and `jobsync followups run`'s)."""
    now = now or utcnow()
    queue = store.notifications()

    def remind(user_id: int, email: str, title: str, body: str) -> str | None:
        outcomes = _to_channels(notify, queue.channel_urls(user_id), email, f"reminder{user_id}", title, body, now,
                                what="reminder")
        return None if any(error is None for _, error in outcomes) else "; ".join(e for _, e in outcomes if e) or None

    return store.alerts(notify.timings()).run_followups(remind, now, limit=notify.followups_per_pass)


def _to_channels(notify: NotifyResource, channels: list[tuple[int, str, str]], email: str, key: str, title: str,
                 body: str, now: datetime, log=None, what: str = "message") -> list[tuple[int | None, str | None]]:
    """A message to each of a user's channels, or to the dev outbox when they have none (if configured):
    one (channel id, or None for the outbox; error or None) per message sent, none when nowhere to send."""
    if not channels:
        outbox = notify.outbox()
        if outbox is None:
            return []
        path = write_outbox(outbox, email, key, title, body, now)
        if log:
            log(f"{email}: {what} written to {path}")
        return [(None, None)]
    outcomes = []
    for channel_id, url, masked in channels:
        error = send(url, title, body, allow=notify.allowed())
        if log:
            log(f"{email}: {what} to {masked}: {error or 'sent'}")
        outcomes.append((channel_id, error))
    return outcomes


@dg.op(description="One delivery pass over due notifications (claimed atomically, per user at most notify.per_user).")
def deliver_notifications_op(context: dg.OpExecutionContext, store: StoreResource, notify: NotifyResource):
    started = time.perf_counter()
    counts = deliver_due(store.store(), notify, log=context.log.info)
    yield dg.Output(counts, metadata={**counts, "duration_seconds": round(time.perf_counter() - started, 3)})


# one small step each: the in-process executor spares each run a subprocess
@dg.job(executor_def=dg.in_process_executor,
        description="Delivers due notifications: each user's digest through apprise to every channel of the user, "
                    "sent only when a channel accepted it, else failed and retried with backoff.")
def deliver_notifications():
    deliver_notifications_op()


@dg.sensor(job=deliver_notifications, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches deliver_notifications (at most once a minute) while notifications are due.")
def delivery_sensor(context: dg.SensorEvaluationContext, store: StoreResource, notify: NotifyResource):
    now = utcnow()
    due = store.store().notifications(max_retries=notify.max_retries).due_count(now)
    if not due:
        return dg.SkipReason("no notification is due")
    return dg.RunRequest(run_key=f"deliver-{now:%Y%m%dT%H%M}", tags={"jobsync/due_notifications": str(due)})


@dg.op(description="One pass over due alert follow-ups (reminders, pause checks).")
def followups_op(context: dg.OpExecutionContext, store: StoreResource, notify: NotifyResource):
    counts = run_followups(store.store(), notify)
    yield dg.Output(counts, metadata=counts)


@dg.job(executor_def=dg.in_process_executor,
        description="Processes due alert-confirmation follow-ups: a reminder at +24 h, a pause check at +48 h.")
def alert_followups():
    followups_op()


@dg.schedule(cron_schedule="* * * * *", job=alert_followups, default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Every minute a follow-up is due, runs alert_followups.")
def followups_schedule(context: dg.ScheduleEvaluationContext, store: StoreResource):
    now = context.scheduled_execution_time or utcnow()
    if not store.store().alerts().due_followups(now):
        return dg.SkipReason("no follow-up is due")
    return dg.RunRequest()


build_notification_batches = dg.define_asset_job(
    "build_notification_batches", selection=[notification_batches],
    description="Builds one window of notification_batches (`jobsync notifications build` runs it).")


@dg.sensor(job=build_notification_batches, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Builds the notification_batches windows holding new or reactivated jobs since its last "
                       "tick (its cursor: the newest job event seen) or of the last two hours (an apply that "
                       "committed late), each once per state of its events (the run key): a window is built as its "
                       "jobs arrive, again when more arrive, and never when nothing did. Reads the local store only.")
def notification_batches_sensor(context: dg.SensorEvaluationContext, store: StoreResource):
    last = int(context.cursor) if context.cursor else None
    windows, newest = store.store().notifications().fresh_windows(after_event_id=last, now=utcnow())
    if newest is not None:
        context.update_cursor(str(newest))
    if not windows:
        return dg.SkipReason("no new or reactivated job in the last two hours or since the last tick")
    # the run key names the window's events as they are: Dagster launches a run key once, so a window
    # whose events did not change since it was built is not built again
    return [dg.RunRequest(run_key=f"{start:%Y-%m-%d-%H:%M}@{key}", partition_key=start.strftime("%Y-%m-%d-%H:%M"))
            for start, key in windows]


@dg.op(description="Removes sent and skipped notifications, deliveries and processed follow-ups older than "
                   "notify.retention_days.")
def notifications_cleanup_op(context: dg.OpExecutionContext, store: StoreResource, notify: NotifyResource):
    removed = store.store().notifications().cleanup(timedelta(days=notify.retention_days))
    context.log.info(f"removed {removed}")
    yield dg.Output(removed, metadata={f"removed_{name}": count for name, count in removed.items()})


@dg.job(executor_def=dg.in_process_executor,
        description="Retention of the alert queues: what was delivered or processed days ago goes.")
def notifications_cleanup():
    notifications_cleanup_op()


cleanup_schedule = dg.ScheduleDefinition(job=notifications_cleanup, cron_schedule="30 3 * * *",
                                         default_status=dg.DefaultScheduleStatus.RUNNING,
                                         description="Daily at 03:30 UTC: notifications_cleanup.")

defs = dg.Definitions(assets=[notification_batches], jobs=[build_notification_batches, deliver_notifications,
                                                           alert_followups, notifications_cleanup],
                      sensors=[delivery_sensor, notification_batches_sensor],
                      schedules=[followups_schedule, cleanup_schedule])
