"""Alerts at scale (issue 16's figures): delivering due notifications with one and with several
deliverer processes, and building one window of notifications.

    .venv/bin/python benchmarks/notifications.py [--postgres URL] [--processes 1 4] [--users 1000]
                                                 [--per-user 10] [--build-jobs 10000] [--build-searches 1000]
                                                 [--build-stores postgresql sqlite] [--skip-delivery] [--skip-build]

Delivery (PostgreSQL only): for each count in `--processes`, a scratch database holding `--users` users
(alerts active, digest asap) with `--per-user` due notifications each, every one for its own job
(10,000 over 1,000 users by default; rows bulk-inserted), each user with one `json://` channel to a
local web hook in this process that answers 200 at once. That many deliverer processes (this script
again, `--deliver`: fresh interpreters running the product's pass, `defs.notifications.deliver_due`,
with NotifyResource's defaults: 100 notifications of a user per digest, 200 users per pass) start, say
they are ready, are released together, and loop passes until no notification is open. Prints the wall
time from the release to the last process's end, notifications and digests per second, and what the
hook counted: duplicates (a job received more than once) and losses (a notification the hook never
received, or not `sent`); both must be 0 (the script exits 1 otherwise).

Build: a scratch store per store kind with a catalog of `--build-jobs` open jobs applied through the
product's own apply (`Store.apply_snapshot`, `search_latency.postings`), all new in one hour window,
and `--build-searches` varied saved searches (`search_latency.searches`, seeded) over users whose
alerts are active (5 each, through the product's own user, alert and search calls). Then it times one
`NotificationStore.build` of that window and prints its seconds, the saved searches it ran, the
notifications it created and the users they are for.

Scratch databases are created and dropped (SQLite in a temporary folder).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]  # the tree this script sits in is the one measured
import search_latency  # noqa: E402 - the catalog's postings and the saved-search generator

from jobsync_pipeline.store.engine import engine_for  # noqa: E402
from jobsync_pipeline_tests.delivery_hook import Hook, seed_due  # noqa: E402 - the test's channel and data
SEARCHES_PER_USER = 5


# --- scratch databases ------------------------------------------------------------------------------

class ScratchPostgres:
    def __init__(self, admin_url: str, tag: str):
        self.admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.name = f"jobsync_notify_bench_{os.getpid()}_{tag}"
        self.url = sa.make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> str:
        from jobsync_pipeline.store.engine import upgrade

        with self.admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
            conn.execute(sa.text(f"CREATE DATABASE {self.name}"))
        upgrade(self.url)
        return self.url

    def __exit__(self, *exc_info) -> None:
        from jobsync_pipeline.store.engine import dispose

        dispose(self.url)
        with self.admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        self.admin.dispose()


# --- delivery ---------------------------------------------------------------------------------------

def deliverer(url: str) -> None:
    """One deliverer process (`--deliver URL`): says it is ready, waits for the release on stdin, loops
    the product's pass until no notification is open, prints its totals and the wall time it ended."""
    from jobsync_pipeline.defs.notifications import deliver_due
    from jobsync_pipeline.defs.resources import NotifyResource
    from jobsync_pipeline.store.repo import Store
    from jobsync_pipeline.store.tables import notifications as n

    notify = NotifyResource(allow_hosts="127.0.0.1", outbox_folder="")
    store = Store(url)
    still_open = sa.or_(n.c.status.in_(("pending", "sending")),
                        sa.and_(n.c.status == "failed", n.c.retry_count < notify.max_retries))
    print("ready", flush=True)
    sys.stdin.readline()
    totals, passes = Counter(), 0
    while True:
        counts = deliver_due(store, notify)
        passes += 1
        totals.update(counts)
        if not counts["digests"]:
            with store.engine.connect() as conn:
                if not conn.scalar(sa.select(sa.func.count()).where(still_open)):
                    break
            time.sleep(0.05)
    print(json.dumps({**totals, "passes": passes, "ended": time.time()}), flush=True)


def delivery_run(admin_url: str, processes: int, user_count: int, per_user: int) -> dict:
    from jobsync_pipeline.store.tables import notifications

    now = datetime.now(timezone.utc) - timedelta(minutes=1)
    with ScratchPostgres(admin_url, f"deliver{processes}") as url, Hook() as hook:
        number_of = seed_due(engine_for(url), hook.url, user_count, per_user, now)
        command = [sys.executable, str(Path(__file__).resolve()), "--deliver", url]
        workers = [subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(processes)]
        try:
            for worker in workers:
                if worker.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a deliverer did not start: {worker.communicate()[1]}")
            released = time.time()
            for worker in workers:
                worker.stdin.write("go\n")
                worker.stdin.flush()
            outputs = [worker.communicate(timeout=3600) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.communicate()
        for worker, (_, err) in zip(workers, outputs):
            if worker.returncode:
                raise RuntimeError(f"a deliverer failed: {err}")
        totals = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        seconds = max(t["ended"] for t in totals) - released
        with engine_for(url).connect() as conn:
            rows = conn.execute(sa.select(notifications.c.job_id, notifications.c.status)).all()
    sent = {number_of[job_id] for job_id, status in rows if status == "sent"}
    expected = user_count * per_user
    received = Counter(number for digest in hook.accepted for number in digest)
    return {
        "processes": processes, "notifications": expected, "digests": len(hook.accepted), "seconds": seconds,
        "duplicates": sum(times - 1 for times in received.values() if times > 1),
        # notifications the hook never received, or not recorded sent
        "losses": expected - len(set(received) & sent),
        "per_process": [t["digests"] for t in totals],
    }


# --- building a window ------------------------------------------------------------------------------

def build_run(url: str, job_count: int, search_count: int, seed: int) -> dict:
    from jobsync_pipeline.core.models import postings_frame
    from jobsync_pipeline.store.engine import upgrade
    from jobsync_pipeline.store.repo import Store

    now = search_latency.NOW
    upgrade(url)
    store = Store(url)
    rng = random.Random(seed)
    started = time.perf_counter()
    for number, start in enumerate(range(0, job_count, search_latency.BOARD_SIZE)):
        board = f"b{number:04d}"
        store.ensure_boards("greenhouse", [board])
        sync_id = store.start_sync("greenhouse", board, run_id=None)
        chunk = search_latency.postings(board, start, min(search_latency.BOARD_SIZE, job_count - start), rng)
        store.apply_snapshot("greenhouse", board, [postings_frame(chunk)], sync_id=sync_id, now=now)
    catalog = time.perf_counter() - started
    alerts = store.alerts()
    for index, parameters in enumerate(search_latency.searches(search_count, seed)):
        email = f"user{index // SEARCHES_PER_USER:05d}@example.org"
        if index % SEARCHES_PER_USER == 0:
            store.searches.add_user(email, None, "Europe/London", now=now)
            alerts.configure(email, digest="asap")
            alerts.start(email, now=now)
            alerts.confirm(email, now=now)
        store.searches.add_search(email, parameters, now=now)
    with store.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    window = now.replace(minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    built = store.notifications().build(window, window + timedelta(hours=1), now=now + timedelta(minutes=5))
    seconds = time.perf_counter() - started
    store.engine.dispose()
    return {"catalog": catalog, "seconds": seconds, "jobs": built.jobs, "searches": built.searches,
            "created": built.created, "users": built.users}


# --- the report -------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("JOBSYNC_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=10)
    parser.add_argument("--build-jobs", type=int, default=10_000)
    parser.add_argument("--build-searches", type=int, default=1000)
    parser.add_argument("--build-stores", nargs="+", choices=("postgresql", "sqlite"), default=["postgresql", "sqlite"])
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--skip-delivery", action="store_true")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--deliver", metavar="URL", help=argparse.SUPPRESS)  # a deliverer process
    args = parser.parse_args()
    if args.deliver:
        deliverer(args.deliver)
        return 0
    failed = False
    if not args.skip_delivery:
        print(f"delivery on PostgreSQL: {args.users * args.per_user:,} due notifications over {args.users:,} users, "
              "one json:// channel each answering 200 at once")
        print(f"{'processes':>9} {'notifications':>13} {'digests':>8} {'seconds':>8} {'notif/s':>8} {'digests/s':>9} "
              f"{'duplicates':>10} {'losses':>7}  digests per process")
        for processes in args.processes:
            r = delivery_run(args.postgres, processes, args.users, args.per_user)
            failed |= bool(r["duplicates"] or r["losses"])
            print(f"{processes:>9} {r['notifications']:>13,} {r['digests']:>8,} {r['seconds']:>8.1f} "
                  f"{r['notifications'] / r['seconds']:>8.0f} {r['digests'] / r['seconds']:>9.1f} "
                  f"{r['duplicates']:>10} {r['losses']:>7}  {r['per_process']}", flush=True)
    if not args.skip_build:
        if not args.skip_delivery:
            print()
        print(f"build of one window: {args.build_jobs:,} new jobs x {args.build_searches:,} saved searches "
              f"({SEARCHES_PER_USER} per user, alerts active)")
        print(f"{'store':<10} {'catalog s':>9} {'build s':>8} {'jobs':>7} {'searches':>8} {'ms/search':>9} "
              f"{'created':>8} {'users':>6}")
        for kind in args.build_stores:
            with tempfile.TemporaryDirectory() as folder:
                if kind == "sqlite":
                    r = build_run(f"sqlite:///{Path(folder) / 'notify.db'}", args.build_jobs, args.build_searches,
                                  args.seed)
                else:
                    with ScratchPostgres(args.postgres, "build") as url:
                        r = build_run(url, args.build_jobs, args.build_searches, args.seed)
            print(f"{kind:<10} {r['catalog']:>9.1f} {r['seconds']:>8.1f} {r['jobs']:>7,} {r['searches']:>8,} "
                  f"{r['seconds'] * 1000 / max(1, r['searches']):>9.1f} {r['created']:>8,} {r['users']:>6,}",
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
