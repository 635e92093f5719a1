"""`jobsync channels|alerts|notifications|followups` (and the alert side of `jobsync users`) through the
installed entry point, as operators run them: on SQLite, and one whole flow on PostgreSQL.

Each command runs in a scratch working folder, so the dev outbox (data/local/outbox, relative to it) is
the test's own. No channel is ever sent to: the only channels added point at a public address and are
removed before anything is delivered (users without channels get their digests in the outbox)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from jobsync_pipeline.store.engine import upgrade
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline_tests.conftest import PROJECT_ROOT, SAMPLE_BUCKET
from jobsync_pipeline_tests.test_cli import env  # noqa: F401 - the fixture

ANN, BOB = "ann@example.com", "bob@example.com"
PASSWORD = "S3cretPassw0rd"
CHANNEL = f"json://hookuser:{PASSWORD}@93.184.216.34/hook"
USER_KEYS = ["email", "name", "timezone", "created_at", "last_seen_at", "alert_status", "digest", "digest_hour",
             "quiet_hours"]
BUILD_KEYS = ["window", "run_id", "window_jobs", "saved_searches", "matches", "users", "pending", "sending", "sent",
              "failed", "skipped", "duration_seconds"]
NOTIFICATION_KEYS = ["id", "user", "saved_search_id", "job_id", "batch_key", "status", "scheduled_for",
                     "retry_count", "error", "created_at", "sent_at"]
FOLLOWUP_KEYS = ["id", "user", "kind", "scheduled_at", "status", "created_at", "processed_at", "error"]


class Cli:
    """`jobsync …` in the test's working folder with the test's store and Dagster home."""

    def __init__(self, env: dict[str, str], cwd):
        self.env, self.cwd = env, cwd
        self.outbox = cwd / "data" / "local" / "outbox"

    def run(self, *args, **extra_env) -> subprocess.CompletedProcess:
        done = subprocess.run(["jobsync", *args], env={**self.env, **extra_env}, cwd=self.cwd,
                              capture_output=True, text=True, timeout=600)
        assert PASSWORD not in done.stdout + done.stderr  # a channel's password is never printed
        return done

    def ok(self, *args, **extra_env):
        done = self.run(*args, "--json", **extra_env)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def text(self, *args, **extra_env) -> str:
        done = self.run(*args, **extra_env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def refused(self, *args, **extra_env) -> str:
        """One line on stderr, exit status 1, nothing on stdout."""
        done = self.run(*args, **extra_env)
        assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1, done.stdout + done.stderr
        assert done.stderr.startswith("jobsync: error: ") and "Traceback" not in done.stderr
        return done.stderr

    def outbox_files(self) -> list:
        return sorted(self.outbox.iterdir()) if self.outbox.exists() else []


@pytest.fixture
def cli(env, tmp_path):
    (tmp_path / "dagster_home" / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    shutil.copytree(SAMPLE_BUCKET / "snapshot_1", tmp_path / "bucket")
    (tmp_path / "work").mkdir()
    env = {name: value for name, value in env.items() if name != "JOBSYNC_NOTIFY_ALLOW_HOSTS"}
    # the code of this checkout, whichever checkout the environment's editable install points at (the
    # command runs in a scratch folder, where nothing else would say)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return Cli(env, tmp_path / "work")


@pytest.fixture
def ann(cli):
    """Ann, her alerts started (made in this process: the commands under test are the refusals)."""
    url = cli.env["JOBSYNC_DATABASE_URL"]
    upgrade(url)
    store = Store(url)
    store.searches.add_user(ANN, "Ann", "Europe/London")
    store.alerts().start(ANN)
    return cli


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def synced_and_built(cli: Cli) -> dict:
    """Sync the sample company files, then build the window(s) their jobs were new in (two when the
    sync straddles the top of an hour); the summed build metadata."""
    before = datetime.now(timezone.utc)
    synced = cli.ok("sync", "company_files")
    after = datetime.now(timezone.utc)
    assert synced["totals"]["new"] == 8
    windows = sorted({before.replace(minute=0, second=0, microsecond=0),
                      after.replace(minute=0, second=0, microsecond=0)})
    built = [cli.ok("notifications", "build", "--window", iso(window)) for window in windows]
    for one in built:
        assert list(one) == BUILD_KEYS
    assert built[0]["window"] == windows[0].strftime("%Y-%m-%d-%H:%M")
    summed = {key: sum(b[key] for b in built) for key in ("window_jobs", "matches", "users", "pending")}
    if len(built) == 2:  # a user whose jobs fell in both windows counts in each
        summed["users"] = min(summed["users"], len({n["user"] for n in cli.ok("notifications", "list")}))
    return summed


# --- the whole flow ------------------------------------------------------------------------------

def test_alerts_from_start_to_digest_confirmation_and_followups(cli):
    cli.ok("users", "add", ANN, "--name", "Ann")
    cli.ok("users", "add", BOB, "--timezone", "America/New_York")
    assert cli.ok("alerts", "start", "--user", ANN)["alert_status"] == "unconfirmed"
    assert cli.text("alerts", "start", "--user", BOB) == f"{BOB}: alerts unconfirmed\n"

    # digest settings
    ann = cli.ok("users", "set", ANN, "--digest", "daily", "--digest-hour", "7", "--quiet-hours", "22:00-6:30",
                 "--timezone", "Europe/Paris")
    assert list(ann) == USER_KEYS
    assert (ann["digest"], ann["digest_hour"], ann["quiet_hours"], ann["timezone"]) == \
        ("daily", 7, "22:00-06:30", "Europe/Paris")
    listed = {u["email"]: u for u in cli.ok("users", "list")}
    assert {(u["alert_status"], u["digest"], u["digest_hour"], u["quiet_hours"]) for u in listed.values()} == \
        {("unconfirmed", "daily", 7, "22:00-06:30"), ("unconfirmed", "daily", 8, None)}
    assert listed[BOB]["timezone"] == "America/New_York"
    lines = cli.text("users", "list").splitlines()
    assert len(lines) == 2
    assert "Europe/Paris" in lines[0] and "alerts unconfirmed" in lines[0] and \
        "daily digest at 07:00, quiet 22:00-06:30" in lines[0]
    assert "alerts unconfirmed" in lines[1] and "daily digest at 08:00" in lines[1] and "quiet" not in lines[1]

    # channels: shown masked, removed
    added = cli.text("channels", "add", CHANNEL, "--user", ANN)
    assert added.startswith("added channel 1: json://hookuser:****@93.184.216.34/hook")
    second = cli.ok("channels", "add", CHANNEL.removesuffix("/hook") + "/other", "--user", ANN)
    assert (second["id"], second["scheme"]) == (2, "json")
    assert second["url"].startswith("json://hookuser:****@93.184.216.34/other")
    channels = cli.ok("channels", "list", "--user", ANN)
    assert [c["id"] for c in channels] == [1, 2] and all("hookuser:****@" in c["url"] for c in channels)
    shown = cli.text("channels", "list", "--user", ANN).splitlines()
    assert [line.split()[0] for line in shown] == ["1", "2"] and all("hookuser:****@" in line for line in shown)
    assert cli.ok("channels", "remove", "1", "--user", ANN) == {"id": 1, "removed": True}
    assert "has no channel 1" in cli.refused("channels", "remove", "1", "--user", ANN)
    assert cli.text("channels", "remove", "2", "--user", ANN) == "removed channel 2\n"
    assert cli.text("channels", "list", "--user", ANN) == f"{ANN} has no channels\n"  # digests go to the outbox

    # saved searches, a synced catalog, the window built
    remote = cli.ok("searches", "add", "--user", ANN, "--remote")["id"]
    chef = cli.ok("searches", "add", "--user", BOB, "--keywords", "chef")["id"]
    built = synced_and_built(cli)
    assert built == {"window_jobs": 8, "matches": 3, "users": 2, "pending": 3}
    rebuilt = cli.text("notifications", "build")  # the window holding now: nothing new in it, or nothing twice
    assert re.fullmatch(r"window \d{4}-\d\d-\d\d-\d\d:00: 0 new notification\(s\) for 0 user\(s\) from "
                        r"(8 new job\(s\) and 2|0 new job\(s\) and 0) saved search\(es\)\n", rebuilt), rebuilt

    pending = cli.ok("notifications", "list", "--status", "pending")
    assert list(pending[0]) == NOTIFICATION_KEYS
    assert sorted((n["user"], n["saved_search_id"]) for n in pending) == [(ANN, remote), (ANN, remote), (BOB, chef)]
    due = {n["user"]: at(n["scheduled_for"]) for n in pending}
    created = at(pending[0]["created_at"])
    # each user's daily hour, in their own zone, within a day of the build
    assert due[ANN].astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") == "07:00"
    assert due[BOB].astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "08:00"
    assert all(created <= when <= created + timedelta(days=1) for when in due.values())

    # delivery: nothing before it is due, then each user's digest in the outbox
    early = cli.text("notifications", "deliver", "--now", iso(min(due.values()) - timedelta(minutes=1)))
    assert early == "0 digest(s): 0 sent, 0 failed, 0 skipped\n" and cli.outbox_files() == []
    delivered = cli.text("notifications", "deliver", "--now", iso(max(due.values())))
    assert delivered.splitlines()[-1] == "2 digest(s): 3 sent, 0 failed, 0 skipped"
    assert f"{ANN}: digest of 2 job(s) written to data/local/outbox/" in delivered
    shown = cli.text("notifications", "list", "--status", "sent").splitlines()
    assert len(shown) == 3 and all("  sent  due " in line for line in shown)
    assert {line.split()[1] for line in shown} == {ANN, BOB}
    mine = cli.ok("notifications", "list", "--status", "sent", "--user", ANN)
    assert [(n["user"], n["status"]) for n in mine] == [(ANN, "sent"), (ANN, "sent")]
    assert all(at(n["sent_at"]) == max(due.values()) for n in mine)  # sent at the --now of the pass
    assert "is sent: only a failed or skipped one is retried" in cli.refused(
        "notifications", "retry", str(pending[0]["id"]))
    assert cli.ok("notifications", "deliver", "--now", iso(max(due.values()) + timedelta(hours=1))) == \
        {"sent": 0, "failed": 0, "skipped": 0, "digests": 0, "void_claims": 0}  # nothing twice

    digests = {path.name.split("-")[1]: path.read_text() for path in cli.outbox_files()}
    assert set(digests) == {"ann_example.com", "bob_example.com"}
    assert digests["ann_example.com"].startswith(f"# 2 new jobs for your saved search\n\nTo: {ANN}\n")
    assert "Route Planning Analyst" in digests["ann_example.com"] and "Sous Chef" in digests["bob_example.com"]

    # Ann confirms with the token her digest carried: once
    token = re.search(r"--token (jsc_[A-Za-z0-9_-]+)", digests["ann_example.com"]).group(1)
    assert cli.text("alerts", "confirm", "--token", token) == f"{ANN}: alerts active\n"
    assert "not valid (it was used, replaced, or mistyped)" in cli.refused("alerts", "confirm", "--token", token)

    # follow-ups: Bob, still unconfirmed, is reminded, then paused; Ann's find nothing to do
    followups = cli.ok("followups", "list")
    assert list(followups[0]) == FOLLOWUP_KEYS
    assert sorted((f["user"], f["kind"], f["status"]) for f in followups) == [
        (ANN, "pause_check_48h", "pending"), (ANN, "reminder_24h", "pending"),
        (BOB, "pause_check_48h", "pending"), (BOB, "reminder_24h", "pending")]
    # (shown to the second: the stored instant may be a fraction later)
    reminder_at = max(at(f["scheduled_at"]) for f in followups if f["kind"] == "reminder_24h") + timedelta(seconds=1)
    pause_at = max(at(f["scheduled_at"]) for f in followups if f["kind"] == "pause_check_48h") + timedelta(seconds=1)
    assert cli.ok("followups", "run", "--now", iso(reminder_at - timedelta(minutes=2))) == \
        {"processed": 0, "skipped": 0, "failed": 0}
    assert cli.ok("followups", "run", "--now", iso(reminder_at)) == {"processed": 1, "skipped": 1, "failed": 0}
    [reminder] = [p for p in cli.outbox_files() if "-reminder" in p.name]
    assert "bob_example.com" in reminder.name and "Confirm your job alerts" in reminder.read_text()
    assert cli.text("followups", "run", "--now", iso(pause_at)) == \
        "follow-ups: 1 processed, 1 skipped, 0 failed to send\n"
    states = {u["email"]: u["alert_status"] for u in cli.ok("users", "list")}
    assert states == {ANN: "active", BOB: "paused"}
    assert sorted((f["user"], f["kind"]) for f in cli.ok("followups", "list", "--status", "processed")) == \
        [(BOB, "pause_check_48h"), (BOB, "reminder_24h")]
    shown = cli.text("followups", "list", "--status", "skipped").splitlines()
    assert len(shown) == 2 and all(ANN in line and "skipped" in line for line in shown)

    # pause and resume
    assert cli.ok("alerts", "pause", "--user", ANN)["alert_status"] == "paused"
    assert cli.ok("alerts", "resume", "--user", ANN)["alert_status"] == "active"  # confirmed before


def test_the_flow_on_postgresql(cli, postgres_url):
    cli.env = {**cli.env, "JOBSYNC_DATABASE_URL": postgres_url}
    cli.ok("users", "add", ANN)
    cli.ok("alerts", "start", "--user", ANN)
    assert cli.ok("users", "set", ANN, "--digest", "asap", "--quiet-hours", "")["digest"] == "asap"
    cli.ok("searches", "add", "--user", ANN, "--remote")
    assert synced_and_built(cli) == {"window_jobs": 8, "matches": 2, "users": 1, "pending": 2}
    [first, second] = cli.ok("notifications", "list", "--user", ANN)
    later = max(at(first["scheduled_for"]), at(second["scheduled_for"])) + timedelta(minutes=1)
    assert cli.ok("notifications", "deliver", "--now", iso(later)) == \
        {"sent": 2, "failed": 0, "skipped": 0, "digests": 1, "void_claims": 0}
    assert len(cli.ok("notifications", "list", "--status", "sent")) == 2
    [digest] = cli.outbox_files()
    token = re.search(r"--token (jsc_[A-Za-z0-9_-]+)", digest.read_text()).group(1)
    assert cli.ok("alerts", "confirm", "--token", token)["alert_status"] == "active"
    assert cli.ok("followups", "run", "--now", iso(later + timedelta(days=3))) == \
        {"processed": 0, "skipped": 2, "failed": 0}


# --- bad input: one line, exit 1, nothing written ------------------------------------------------

BAD_CHANNELS = [
    (f"json://hookuser:{PASSWORD}@", "json://hookuser:****@ is not a valid json URL"),
    (f"nope://hookuser:{PASSWORD}@example.com/hook", "unknown scheme 'nope'; use one apprise knows"),
    ("json://127.0.0.1/x", "channel host 127.0.0.1 is a loopback address; set JOBSYNC_NOTIFY_ALLOW_HOSTS to allow it"),
    ("json://10.1.2.3/x", "channel host 10.1.2.3 is a private address"),
]


def test_a_channel_that_cannot_be_used_is_refused_and_nothing_is_written(ann):
    for url, says in BAD_CHANNELS:
        assert says in ann.refused("channels", "add", url, "--user", ANN), url
    assert ann.ok("channels", "list", "--user", ANN) == []


def test_a_private_host_is_allowed_by_the_allow_list(ann):
    assert "loopback address" in ann.refused("channels", "add", "json://127.0.0.1/x", "--user", ANN,
                                             JOBSYNC_NOTIFY_ALLOW_HOSTS="10.0.0.0/8")
    assert "is neither a host name nor a CIDR range" in ann.refused(
        "channels", "add", "json://127.0.0.1/y", "--user", ANN, JOBSYNC_NOTIFY_ALLOW_HOSTS="not/a/range")
    added = ann.ok("channels", "add", "json://127.0.0.1/x", "--user", ANN, JOBSYNC_NOTIFY_ALLOW_HOSTS="127.0.0.1")
    assert added["url"].startswith("json://127.0.0.1/x")
    assert [c["id"] for c in ann.ok("channels", "list", "--user", ANN)] == [added["id"]]


def test_an_unknown_user_is_refused(ann):
    says = "no user nobody@example.com; `jobsync users add nobody@example.com` adds one"
    for command in (("channels", "add", CHANNEL, "--user", "nobody@example.com"),
                    ("alerts", "start", "--user", "nobody@example.com"),
                    ("users", "set", "nobody@example.com", "--digest", "hourly")):
        assert ann.refused(*command).strip() == f"jobsync: error: {says}"
    assert [u["email"] for u in ann.ok("users", "list")] == [ANN]


BAD_SETTINGS = [
    (("--timezone", "Mars/Base"), "timezone: 'Mars/Base' is not a time zone"),
    (("--quiet-hours", "25:00-07:00"), "quiet-hours: quiet hours '25:00-07:00': 25:00 is not a time of day"),
    (("--quiet-hours", "07:00-07:00"), "start and end at the same time"),
    (("--digest-hour", "24"), "digest-hour: Input should be less than or equal to 23"),
    (("--digest", "hourly", "--timezone", "Nowhere"), "is not a time zone"),  # nothing of it written
    ((), "users set needs one of --digest, --digest-hour, --quiet-hours, --timezone"),
]


def test_bad_digest_settings_are_refused_and_nothing_is_written(ann):
    before = ann.ok("users", "list")
    assert (before[0]["digest"], before[0]["timezone"], before[0]["quiet_hours"]) == ("daily", "Europe/London", None)
    for args, says in BAD_SETTINGS:
        assert says in ann.refused("users", "set", ANN, *args), args
    assert ann.ok("users", "list") == before


def test_a_window_in_the_future_or_not_a_time_and_an_unknown_notification_are_refused(ann):
    assert "--window 2099-01-01T00:00+00:00 is in the future" in ann.refused(
        "notifications", "build", "--window", "2099-01-01T00:00Z")
    assert "--now 'soon' is not an ISO time" in ann.refused("notifications", "deliver", "--now", "soon")
    assert ann.refused("notifications", "retry", "999").strip() == "jobsync: error: no notification 999"
    assert ann.text("notifications", "list") == "no notifications\n"
    assert ann.outbox_files() == []
    with dg.DagsterInstance.from_config(ann.env["DAGSTER_HOME"]) as instance:
        assert instance.get_runs() == []  # no window was built
