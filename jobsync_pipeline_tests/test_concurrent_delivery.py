"""Issue 16's acceptance test for delivery, for real: 10,000 due notifications on the real PostgreSQL,
delivered by four deliverer processes at once through apprise to a local web hook that refuses about
a tenth of what it gets; every notification ends sent or failed for good, and the hook accepted each
job once at most, exactly the sent ones.

The data goes in with bulk inserts (200 active users with an `asap` digest, one saved search and one
`json://` channel each, 50 notifications per user, each for its own job). Each deliverer is a fresh
Python process (`python -c DELIVERER`) looping the product's pass, `defs.notifications.deliver_due`,
with `per_user=50` (one digest per user and attempt) until no notification is open. The processes
share one clock, `T0 + (wall time since the go) × SPEED`, so the backoff of a failed digest (5, then
10 minutes) falls due within seconds and every process agrees on what is due; the lease is an hour of
that clock (30 s of wall time), longer than any pass here, so no claim is released under a live pass.

The hook answers by the digest's body, deterministically: a body whose SHA-256 falls in the first 2 %
is refused every time (its notifications end failed after max_retries attempts), one in the next 8 %
is refused the first time only (retried, then sent), any other is accepted. A retried digest has the
same body, as its claim takes the same 50 notifications again.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from jobsync_pipeline.store.engine import engine_for
from jobsync_pipeline.store.notifications import FAILED, SENT
from jobsync_pipeline.store.tables import deliveries, notifications
from jobsync_pipeline_tests.conftest import PROJECT_ROOT
from jobsync_pipeline_tests.delivery_hook import Hook, seed_due

USERS, PER_USER = 200, 50  # 10,000 notifications; one digest per user and attempt
PROCESSES = 4
MAX_RETRIES = 3  # NotifyResource's default: a notification is sent at most 3 times
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
SPEED = 120  # simulated seconds per wall second: a 5-minute backoff is 2.5 s

# One deliverer process: argv = store URL, T0, SPEED, the notify settings as JSON. It prints "ready",
# waits for the go (the wall time the shared clock starts at) on stdin, loops passes until no
# notification is open (pending, sending, or failed with retries left), then prints its totals.
DELIVERER = """
import json, sys, time
from collections import Counter
from datetime import datetime, timedelta
import sqlalchemy as sa
from jobsync_pipeline.defs.notifications import deliver_due
from jobsync_pipeline.defs.resources import NotifyResource
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import notifications as n

url, t0, speed, settings = sys.argv[1], datetime.fromisoformat(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
notify = NotifyResource(**settings)
store = Store(url)
still_open = sa.or_(n.c.status.in_(("pending", "sending")),
                    sa.and_(n.c.status == "failed", n.c.retry_count < notify.max_retries))
print("ready", flush=True)
go = float(sys.stdin.readline())
totals, passes = Counter(), 0
while True:
    now = t0 + timedelta(seconds=(time.time() - go) * speed)
    counts = deliver_due(store, notify, now)
    passes += 1
    totals.update(counts)
    if not counts["digests"]:
        with store.engine.connect() as conn:
            if not conn.scalar(sa.select(sa.func.count()).where(still_open)):
                break
        time.sleep(0.1)
print(json.dumps({**totals, "passes": passes}), flush=True)
"""


def refusing_a_tenth(attempts: Counter) -> Callable[[bytes], int]:
    """The hook's answer by the digest's body (see the module docstring)."""
    def answer(body: bytes) -> int:
        key = hashlib.sha256(body).digest()
        bucket = int.from_bytes(key[:8], "big") % 100
        attempts[key] += 1
        return 500 if bucket < 2 or (bucket < 10 and attempts[key] == 1) else 200
    return answer


def test_four_deliverer_processes_deliver_10000_notifications_each_once_at_most(postgres_url):
    started = time.perf_counter()
    engine = engine_for(postgres_url)
    with Hook(refusing_a_tenth(Counter())) as hook:
        number_of = seed_due(engine, hook.url, USERS, PER_USER, T0)
        settings = {"allow_hosts": "127.0.0.1", "outbox_folder": "", "per_user": PER_USER, "users_per_pass": 25,
                    "max_retries": MAX_RETRIES, "lease_minutes": 60}
        command = [sys.executable, "-c", DELIVERER, postgres_url, T0.isoformat(), str(SPEED), json.dumps(settings)]
        deliverers = [subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True) for _ in range(PROCESSES)]
        try:
            for process in deliverers:
                assert process.stdout.readline().strip() == "ready", process.stderr.read()
            go = f"{time.time()}\n"
            for process in deliverers:
                process.stdin.write(go)
                process.stdin.flush()
            outputs = [process.communicate(timeout=100) for process in deliverers]
        finally:
            for process in deliverers:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        for process, (out, err) in zip(deliverers, outputs):
            assert process.returncode == 0, err
        totals = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(notifications.c.job_id, notifications.c.status,
                                      notifications.c.retry_count)).all()
        delivered = dict(conn.execute(sa.select(deliveries.c.outcome, sa.func.count())
                                      .group_by(deliveries.c.outcome)).all())
        carried = conn.scalar(sa.select(sa.func.sum(deliveries.c.notifications)).where(deliveries.c.outcome == SENT))

    assert len(rows) == USERS * PER_USER
    # every notification ended: sent, or failed with no retry left (none pending, sending, or due again)
    assert Counter(status for _, status, _ in rows).keys() <= {SENT, FAILED}
    assert all(retries == MAX_RETRIES for _, status, retries in rows if status == FAILED)
    # at the channel: no job twice, and exactly the sent ones
    received = Counter(number for digest in hook.accepted for number in digest)
    assert [number for number, times in received.items() if times > 1] == []  # duplicates: 0
    sent = {number_of[job_id] for job_id, status, _ in rows if status == SENT}
    assert set(received) == sent  # each sent one received exactly once; no failed one received
    # the deliveries log agrees with what the channel saw
    assert delivered.get(SENT, 0) == len(hook.accepted)
    assert delivered.get(FAILED, 0) == hook.refused
    assert carried == len(sent)
    assert sum(t["digests"] for t in totals) == len(hook.accepted) + hook.refused
    # failures happened and were retried: some ended sent after a failure, some failed for good
    assert hook.refused > 0
    assert any(status == SENT and retries > 0 for _, status, retries in rows)
    assert any(status == FAILED for _, status, _ in rows)
    # the four processes shared the work
    assert all(t["digests"] > 0 for t in totals), totals
    summary = {"sent": len(sent), "failed": sum(status == FAILED for _, status, _ in rows),
               "sent_after_retry": sum(status == SENT and retries > 0 for _, status, retries in rows),
               "accepted_digests": len(hook.accepted), "refused": hook.refused,
               "digests_per_process": [t["digests"] for t in totals], "seconds": round(time.perf_counter() - started, 1)}
    print(summary)
