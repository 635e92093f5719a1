"""`jobsync channels …`, `jobsync alerts …`, `jobsync notifications …` and `jobsync followups …`: users'
alert channels and state, and the notification and follow-up queues (store/alerts.py,
store/notifications.py), each answer a JSON object with --json.

A channel URL is shown masked, never with its credentials; a URL apprise cannot parse, an unknown
scheme or a private host that JOBSYNC_NOTIFY_ALLOW_HOSTS does not allow is one line and writes nothing.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone

from jobsync_pipeline.cli.runtime import CommandError, ready_store_url
from jobsync_pipeline.cli.searches import _print

STATUSES = ("pending", "sending", "sent", "failed", "skipped")


def add_commands(commands: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    """The four command groups; returns every leaf parser (they all take --json)."""
    channels = commands.add_parser("channels", help="where a user's alerts go (apprise URLs)")
    channel_commands = channels.add_subparsers(dest="channels_command", required=True)
    add = channel_commands.add_parser("add", help="add a channel: mailto://, slack://, discord://, tgram://, json://, …")
    add.add_argument("url")
    listing = channel_commands.add_parser("list", help="a user's channels (credentials masked)")
    remove = channel_commands.add_parser("remove", help="remove a channel")
    remove.add_argument("id", type=int)
    for sub in (add, listing, remove):
        sub.add_argument("--user", required=True, metavar="EMAIL")

    alerts = commands.add_parser("alerts", help="a user's alerts: start, confirm, pause, resume")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    start = alert_commands.add_parser("start", help="start alerts (unconfirmed until confirmed; follow-ups queued)")
    confirm = alert_commands.add_parser("confirm", help="confirm started alerts (or with --token from a digest)")
    pause = alert_commands.add_parser("pause", help="pause alerts (due digests wait)")
    resume = alert_commands.add_parser("resume", help="resume paused alerts")
    for sub in (start, pause, resume):
        sub.add_argument("--user", required=True, metavar="EMAIL")
    confirm.add_argument("--user", metavar="EMAIL")
    confirm.add_argument("--token", help="the one-time confirmation token a digest carried")

    notifications = commands.add_parser("notifications", help="notification batches and their delivery")
    notification_commands = notifications.add_subparsers(dest="notifications_command", required=True)
    build = notification_commands.add_parser(
        "build", help="materialize the notification_batches window through Dagster (default: the window holding now)")
    build.add_argument("--window", metavar="START", help="the window's start, ISO (e.g. 2026-12-04T10:00Z)")
    deliver = notification_commands.add_parser("deliver", help="one delivery pass, in this process")
    deliver.add_argument("--now", metavar="ISO", help="act as if the clock said this (operators, tests)")
    shown = notification_commands.add_parser("list", help="notifications, newest first")
    shown.add_argument("--status", choices=STATUSES)
    shown.add_argument("--user", metavar="EMAIL")
    shown.add_argument("--limit", type=int, default=50)
    retry = notification_commands.add_parser("retry", help="a failed or skipped notification due again now")
    retry.add_argument("id", type=int)

    followups = commands.add_parser("followups", help="the delayed follow-ups of alert confirmations")
    followup_commands = followups.add_subparsers(dest="followups_command", required=True)
    pending = followup_commands.add_parser("list", help="follow-ups, soonest first")
    pending.add_argument("--status", choices=("pending", "processing", "processed", "skipped"))
    run = followup_commands.add_parser("run", help="one follow-up pass, in this process")
    run.add_argument("--now", metavar="ISO", help="act as if the clock said this (operators, tests)")
    return [add, listing, remove, start, confirm, pause, resume, build, deliver, shown, retry, pending, run]


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from jobsync_pipeline.cli.searches import validation_text
    from jobsync_pipeline.notify.channels import ChannelError
    from jobsync_pipeline.store.searches import NotFound

    try:
        return {"channels": _channels, "alerts": _alerts, "notifications": _notifications,
                "followups": _followups}[args.command](args)
    except ValidationError as exc:
        raise CommandError(validation_text(exc)) from exc
    except (NotFound, LookupError, ChannelError, ValueError) as exc:
        raise CommandError(str(exc).strip("'\"")) from exc


def _store():
    from jobsync_pipeline.store.repo import Store

    return Store(ready_store_url())


def _notify():
    from jobsync_pipeline.defs.resources import NotifyResource

    return NotifyResource()


def _channels(args) -> int:
    alerts = _store().alerts()
    if args.channels_command == "add":
        channel = alerts.add_channel(args.user, args.url, allow=_notify().allowed())
        _print(args, channel.as_json(), f"added channel {channel.id}: {channel.masked_url}")
    elif args.channels_command == "list":
        rows = [c.as_json() for c in alerts.channels(args.user)]
        _print(args, rows, "\n".join(f"{r['id']}  {r['url']}" for r in rows) or f"{args.user} has no channels")
    else:
        alerts.remove_channel(args.user, args.id)
        _print(args, {"id": args.id, "removed": True}, f"removed channel {args.id}")
    return 0


def _alerts(args) -> int:
    from jobsync_pipeline.cli.searches import _user_json

    alerts = _store().alerts(_notify().timings())
    command = args.alerts_command
    if command == "confirm":
        if bool(args.user) == bool(args.token):
            raise CommandError("alerts confirm takes --user EMAIL or --token TOKEN")
        user = alerts.confirm(args.user) if args.user else alerts.confirm_token(args.token)
        if user is None:
            raise CommandError("that confirmation token is not valid (it was used, replaced, or mistyped)")
    else:
        user = {"start": alerts.start, "pause": alerts.pause, "resume": alerts.resume}[command](args.user)
    _print(args, _user_json(user), f"{user.email}: alerts {user.alert_status}")
    return 0


def _notifications(args) -> int:
    store = _store()
    command = args.notifications_command
    if command == "build":
        return _build(args)
    if command == "deliver":
        from jobsync_pipeline.defs.notifications import deliver_due

        counts = deliver_due(store, _notify(), now=_instant(args.now, "--now"),
                             log=None if args.json else print)
        _print(args, counts, f"{counts['digests']} digest(s): {counts['sent']} sent, {counts['failed']} failed, "
                             f"{counts['skipped']} skipped")
        return 0
    queue = store.notifications(max_retries=_notify().max_retries)
    if command == "list":
        if args.user:
            store.searches.user(args.user)  # an unknown user is an error, not an empty list
        rows = [n.as_json() for n in queue.list(args.status, args.user, args.limit)]
        _print(args, rows, "\n".join(
            f"{r['id']}  {r['user']}  search {r['saved_search_id']}  job {r['job_id']}  {r['status']}"
            f"  due {r['scheduled_for']}{'  ' + r['error'] if r['error'] else ''}" for r in rows) or "no notifications")
        return 0
    notification = queue.retry(args.id)
    _print(args, notification.as_json(), f"notification {notification.id} is pending again")
    return 0


def _build(args) -> int:
    """Materialize one window of notification_batches through Dagster, in this process."""
    from jobsync_pipeline.cli.runtime import instance
    from jobsync_pipeline.cli.sync import QUIET_LOGS
    from jobsync_pipeline.definitions import defs
    from jobsync_pipeline.store.time import utcnow

    start = _instant(args.window, "--window") or utcnow()
    from jobsync_pipeline.defs.notifications import WINDOWS

    if start > utcnow():
        raise CommandError(f"--window {start.isoformat(timespec='minutes')} is in the future")
    first = WINDOWS.start
    if start < first:
        raise CommandError(f"--window {start.isoformat(timespec='minutes')} is before the first window "
                           f"({first:%Y-%m-%d %H:%M} UTC)")
    key = start.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%d-%H:%M")
    job = defs.resolve_job_def("build_notification_batches")
    result = job.execute_in_process(instance=instance(), partition_key=key, run_config=QUIET_LOGS,
                                    raise_on_error=False)
    metadata = {}
    for event in result.get_asset_materialization_events():
        metadata = {name: value.value for name, value in event.materialization.metadata.items()}
    if not result.success:
        raise CommandError(f"building window {key} failed (Dagster run {result.run_id})")
    _print(args, {"window": key, "run_id": result.run_id, **metadata},
           f"window {key}: {metadata.get('matches', 0)} new notification(s) for {metadata.get('users', 0)} user(s) "
           f"from {metadata.get('window_jobs', 0)} new job(s) and {metadata.get('saved_searches', 0)} saved search(es)")
    return 0


def _followups(args) -> int:
    store = _store()
    if args.followups_command == "list":
        rows = [f.as_json() for f in store.alerts().followups(args.status)]
        _print(args, rows, "\n".join(f"{r['id']}  {r['user']}  {r['kind']}  {r['status']}  at {r['scheduled_at']}"
                                     for r in rows) or "no follow-ups")
        return 0
    from jobsync_pipeline.defs.notifications import run_followups

    counts = run_followups(store, _notify(), now=_instant(args.now, "--now"))
    _print(args, counts, f"follow-ups: {counts['processed']} processed, {counts['skipped']} skipped, "
                         f"{counts['failed']} failed to send")
    return 0


def _instant(text: str | None, name: str) -> datetime | None:
    """An ISO time as aware UTC (a time without a zone is UTC); ValueError naming the option."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} {text!r} is not an ISO time (e.g. 2026-12-04T10:00Z)") from None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


