"""A cron tick of saved searches through a real Dagster daemon (issue 15's figures, last part).

    .venv/bin/python benchmarks/search_cron_tick.py [--users 100] [--searches-per-user 3] [--jobs 100000]
                                                    [--store sqlite|postgres] [--instance sqlite|postgres]
                                                    [--instance-yaml PATH] [--postgres URL] [--timeout 3600]

Builds (once; cached in benchmarks/out/: a SQLite file, or a PostgreSQL template database) a catalog of
`--jobs` open jobs with search_latency.py's builder, copies it into a scratch store, adds `--users` users
seen within the last 20 days with `--searches-per-user` varied saved searches each (search_latency.py's
generator), and starts `dagster-daemon run -w workspace.yaml` in a temporary DAGSTER_HOME whose
dagster.yaml is the project's (`--instance postgres`: deploy/dagster.yaml over a scratch
database; `--instance-yaml`: any other, to compare run-queue settings), the store in JOBSYNC_DATABASE_URL
and an empty bucket. Once the daemon's search_run_sensor has ticked, it evaluates the real
search_schedule (`build_schedule_context` with its resources), which enqueues one cron run per saved
search, and waits while search_run_sensor and the QueuedRunCoordinator launch them, until every search
run and every Dagster run has ended.

Prints the wall time from the tick until the last Dagster run ended, search runs succeeded and failed
(must be 0, with the errors), the median, p95 and max of each leg of a run (row enqueued → Dagster run
created by the sensor → dequeued by the run queue → run worker started → run ended; and the search step
itself), the peak number of runs in progress (dequeued, not ended: what max_concurrent_runs bounds) and
of run workers executing, how the runs spread over the time (per interval: dequeued, ended, in progress,
still queued), and the run-queue settings in force. Exits 1 when a search run did not succeed.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
# the tree this script sits in is the one measured (a checkout of another version too), daemon included
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]
import search_latency  # noqa: E402 - the catalog builder and the saved-search generator

OUT = ROOT / "benchmarks" / "out"
BIN = Path(sys.executable).parent
SENSOR = "search_run_sensor"


def catalog_name(jobs: int, seed: int) -> str:
    """The cached catalog's name: its size, seed and schema revision (a newer schema builds a new one)."""
    from jobsync_pipeline.store.engine import head_revision

    return f"search_catalog_{jobs}_{seed}_{head_revision()}".lower()


def cached_sqlite_catalog(jobs: int, seed: int) -> Path:
    path = OUT / f"{catalog_name(jobs, seed)}.db"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.db")
        partial.unlink(missing_ok=True)
        print(f"building the {jobs:,}-job catalog (cached in {path.relative_to(ROOT)}) ...", flush=True)
        built = search_latency.build(f"sqlite:///{partial}", jobs, seed)
        print(f"  built in {built:.0f} s", flush=True)
        partial.rename(path)
    return path


def sqlite_store(folder: Path, jobs: int, seed: int) -> str:
    target = folder / "store.db"
    with sqlite3.connect(cached_sqlite_catalog(jobs, seed)) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    return f"sqlite:///{target}"


class Postgres:
    """Scratch databases on the server; the catalog kept as a template database between runs."""

    def __init__(self, url: str):
        self.url = url
        self.admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def _run(self, sql: str, **params):
        with self.admin.connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.scalar() if result.returns_rows else None

    def url_of(self, name: str) -> str:
        return sa.make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def scratch(self, name: str, template: str | None = None) -> str:
        self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._run(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.made.append(name)
        return self.url_of(name)

    def catalog(self, jobs: int, seed: int) -> str:
        template = f"jobsync_{catalog_name(jobs, seed)}"[:63]
        ready = self._run("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n",
                          n=template)
        if ready != "complete":
            print(f"building the {jobs:,}-job catalog (kept as the database {template}) ...", flush=True)
            self._run(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            self._run(f'CREATE DATABASE "{template}"')
            built = search_latency.build(self.url_of(template), jobs, seed)
            from jobsync_pipeline.store.engine import dispose

            dispose(self.url_of(template))
            self._run(f"COMMENT ON DATABASE \"{template}\" IS 'complete'")
            print(f"  built in {built:.0f} s", flush=True)
        return template

    def close(self) -> None:
        from jobsync_pipeline.store.engine import dispose

        for name in self.made:
            dispose(self.url_of(name))
            self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


def add_users(url: str, users: int, per_user: int, seed: int, now: datetime) -> None:
    from jobsync_pipeline.store.repo import Store

    searches = Store(url).searches
    rng = random.Random(seed)
    queries = iter(search_latency.searches(users * per_user, seed))
    for i in range(users):
        email = f"user{i:03d}@bench.example"
        searches.add_user(email, None, "Europe/London", now=now - timedelta(days=40))
        for _ in range(per_user):
            searches.add_search(email, next(queries), now=now - timedelta(days=40))
        searches.user(email, seen=now - timedelta(days=rng.uniform(0, 20)))  # active: seen within 30 days


def tick(url: str) -> tuple[datetime, str]:
    """Evaluate the real search_schedule, as the daemon does at a cron time."""
    import dagster as dg

    from jobsync_pipeline.defs.resources import SearchPolicyResource, StoreResource
    from jobsync_pipeline.defs.searches import search_schedule

    now = datetime.now(timezone.utc)
    resources = {"store": StoreResource(url=url), "search_policy": SearchPolicyResource()}
    with dg.build_schedule_context(scheduled_execution_time=now, resources=resources) as context:
        result = search_schedule(context)
    return now, getattr(result, "skip_message", str(result))


def sensor_ticked(instance) -> bool:
    states = [s for s in instance.all_instigator_state() if s.name == SENSOR]
    return bool(states and instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id, limit=1))


def rows(url: str, since: datetime) -> list:
    from jobsync_pipeline.store.engine import engine_for
    from jobsync_pipeline.store.tables import search_runs

    with engine_for(url).connect() as conn:
        return conn.execute(sa.select(search_runs).where(search_runs.c.source == "cron",
                                                         search_runs.c.created_at >= since - timedelta(seconds=1))
                            .order_by(search_runs.c.id)).all()


def as_epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(len(ordered) * 0.95) - 1))]
    return f"{statistics.median(ordered):8.2f} {p95:8.2f} {ordered[-1]:8.2f}"


def peak(intervals: list[tuple[float, float]]) -> tuple[int, float]:
    """The most intervals open at one instant, and the mean number open over the whole span."""
    if not intervals:
        return 0, 0.0
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    span = max(b for _, b in intervals) - min(a for a, _ in intervals)
    return most, sum(b - a for a, b in intervals) / span if span > 0 else float(most)


def stop(daemon: subprocess.Popen) -> None:
    """The daemon, its code server and any run worker still alive: all in the daemon's process group."""
    try:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(daemon.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--searches-per-user", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=100_000, help="catalog size (open jobs)")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--instance", choices=("sqlite", "postgres"), default="sqlite",
                        help="the Dagster instance: the project's dagster.yaml (SQLite storage), or "
                             "deploy/dagster.yaml over a scratch database")
    parser.add_argument("--instance-yaml", type=Path, help="use this dagster.yaml instead (to compare settings)")
    parser.add_argument("--postgres", default=os.environ.get("JOBSYNC_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--interval", type=float, default=60, help="seconds per line of the timeline")
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args()

    import dagster as dg
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    postgres = Postgres(args.postgres) if "postgres" in (args.store, args.instance) else None
    folder = Path(tempfile.mkdtemp(prefix="jobsync_cron_tick_"))
    daemon = None
    try:
        if args.store == "sqlite":
            url = sqlite_store(folder, args.jobs, args.seed)
        else:
            url = postgres.scratch(f"jobsync_cron_tick_{os.getpid()}", template=postgres.catalog(args.jobs, args.seed))
        add_users(url, args.users, args.searches_per_user, args.seed, datetime.now(timezone.utc))

        home = folder / "dagster_home"
        home.mkdir()
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "JOBSYNC_DATABASE_URL": url,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "JOBSYNC_BUCKET_URL": str(folder / "bucket"), "DAGSTER_HOME": str(home)}
        (folder / "bucket").mkdir()
        config = args.instance_yaml or (ROOT / "deploy" / "dagster.yaml" if args.instance == "postgres"
                                        else ROOT / "dagster.yaml")
        (home / "dagster.yaml").symlink_to(config.resolve())
        if args.instance == "postgres":
            env["DAGSTER_POSTGRES_URL"] = postgres.scratch(f"jobsync_cron_tick_dagster_{os.getpid()}")
            os.environ["DAGSTER_POSTGRES_URL"] = env["DAGSTER_POSTGRES_URL"]

        log = (folder / "daemon.log").open("wb")
        daemon = subprocess.Popen(["dagster-daemon", "run", "-w", "workspace.yaml"], env=env, cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            started = time.monotonic()
            while not sensor_ticked(instance):
                if daemon.poll() is not None or time.monotonic() - started > 300:
                    raise SystemExit("the daemon did not start (its log above)")
                time.sleep(1)
            print(f"daemon up in {time.monotonic() - started:.0f} s; {args.users} users x "
                  f"{args.searches_per_user} saved searches over {args.jobs:,} jobs, store {args.store}, "
                  f"instance {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}", flush=True)

            tick_at, message = tick(url)
            t0 = tick_at.timestamp()
            queued = rows(url, tick_at)
            print(f"tick: {message}", flush=True)
            expected = args.users * args.searches_per_user
            if len(queued) != expected:
                raise SystemExit(f"the tick enqueued {len(queued)} cron runs, not {expected}")
            last_note = time.monotonic()
            while True:
                current = rows(url, tick_at)
                open_rows = sum(r.status in ("pending", "running") for r in current)
                runs = instance.get_runs(RunsFilter(job_name="search_run"))
                open_runs = sum(not r.is_finished for r in runs)
                if not open_rows and not open_runs and len(runs) >= expected:
                    break
                if time.time() - t0 > args.timeout:
                    raise SystemExit(f"gave up after {args.timeout:.0f} s: {open_rows} search runs open; "
                                     f"see {folder / 'daemon.log'}")
                if daemon.poll() is not None:
                    raise SystemExit("the daemon died (its log above)")
                if time.monotonic() - last_note > 30:
                    done = sum(r.status not in ("pending", "running") for r in current)
                    print(f"  {time.time() - t0:6.0f} s: {done}/{expected} search runs ended, "
                          f"{len(runs)} Dagster runs, {open_runs} not ended", flush=True)
                    last_note = time.monotonic()
                time.sleep(1)

            runs = instance.get_runs(RunsFilter(job_name="search_run"))
            records = {r.dagster_run.run_id: r for r in instance.get_run_records(RunsFilter(job_name="search_run"))}
            dequeued, steps = {}, {}
            for run in runs:
                # the run queue reports RUN_STARTING as it takes a run off the queue to launch it
                starting = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_STARTING)
                dequeued[run.run_id] = starting[0].timestamp if starting else None
                step = {e.dagster_event_type: e.timestamp for e in instance.all_logs(
                    run.run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
                                         DagsterEventType.STEP_FAILURE})}
                steps[run.run_id] = (step.get(DagsterEventType.STEP_START),
                                     step.get(DagsterEventType.STEP_SUCCESS) or step.get(DagsterEventType.STEP_FAILURE))
            failures = {}
            for run in runs:
                if run.status != DagsterRunStatus.SUCCESS:
                    errors = [e.message for e in instance.all_logs(run.run_id, of_type={
                        DagsterEventType.RUN_FAILURE, DagsterEventType.STEP_FAILURE})]
                    failures[run.run_id] = f"{run.status.value}: {'; '.join(errors)[:300]}"
            settings = instance.get_concurrency_config().run_queue_config
            dequeue_interval = instance.run_coordinator.dequeue_interval_seconds

        final = rows(url, tick_at)
        by_dagster = {r.dagster_run_id: r for r in final}
        sensor_lag, queue_wait, launch, execution, search, to_running, in_queue, working = [], [], [], [], [], [], [], []
        before_step, in_step, after_step = [], [], []
        ends = []
        for run_id, record in records.items():
            row = by_dagster.get(run_id)
            created, started, ended = record.create_timestamp.timestamp(), record.start_time, record.end_time
            out = dequeued.get(run_id)
            ends.append(ended)
            if row is not None:
                sensor_lag.append(created - as_epoch(row.created_at))
                to_running.append(as_epoch(row.started_at) - as_epoch(row.created_at))
                search.append(as_epoch(row.completed_at) - as_epoch(row.started_at))
            if out is not None:
                queue_wait.append(out - created)
                in_queue.append((out, ended))
                if started:
                    launch.append(started - out)
            if started and ended:
                execution.append(ended - started)
                working.append((started, ended))
                step_start, step_end = steps.get(run_id, (None, None))
                if step_start and step_end:
                    before_step.append(step_start - started)
                    in_step.append(step_end - step_start)
                    after_step.append(ended - step_end)
        statuses = {}
        for row in final:
            statuses[row.status] = statuses.get(row.status, 0) + 1
        succeeded = statuses.get("success", 0)
        wall = max(ends) - t0 if ends else float("nan")
        last_row = max(as_epoch(r.completed_at) or 0 for r in final) - t0

        print()
        print(f"cron runs enqueued by the tick: {expected}; Dagster search_run runs: {len(runs)}")
        print(f"wall time, tick -> last Dagster run ended: {wall:.1f} s (last search run ended at {last_row:.1f} s); "
              f"{expected / wall * 60:.1f} searches/minute")
        print(f"search runs: succeeded {succeeded}, failed {statuses.get('failed', 0)}, other "
              f"{ {k: v for k, v in statuses.items() if k not in ('success', 'failed')} or 0}")
        print(f"Dagster runs not SUCCESS: {len(failures)}")
        for row in final:
            if row.status != "success":
                print(f"  search run {row.id}: {row.status}: {row.error}")
        for run_id, text in failures.items():
            print(f"  Dagster run {run_id}: {text}")
        print()
        print(f"{'seconds':<52} {'median':>8} {'p95':>8} {'max':>8}")
        for name, values in (("enqueued -> Dagster run created (search_run_sensor)", sensor_lag),
                             ("Dagster run created -> dequeued (queue wait)", queue_wait),
                             ("dequeued -> run worker started (launch)", launch),
                             ("run worker started -> run ended (execution)", execution),
                             ("  of which: run worker started -> step started", before_step),
                             ("            step started -> step ended", in_step),
                             ("            step ended -> run ended", after_step),
                             ("search step: row running -> row success", search),
                             ("enqueued -> row running", to_running)):
            print(f"{name:<52} {spread(values)}")
        most, mean = peak(in_queue)
        busiest, mean_working = peak(working)
        print()
        print(f"peak runs in progress (dequeued, not ended): {most}; mean over the tick {mean:.2f}")
        print(f"peak run workers executing at once: {busiest}; mean {mean_working:.2f}")
        print(f"run queue in force: max_concurrent_runs {settings.max_concurrent_runs}, tag_concurrency_limits "
              f"{list(settings.tag_concurrency_limits) or 'none'}, dequeue every {dequeue_interval} s; "
              f"{os.cpu_count()} CPUs")
        print()
        print(f"{'from s':>7} {'to s':>7} {'dequeued':>9} {'ended':>6} {'in progress (mean)':>19} {'queued at end':>14}")
        step = args.interval
        start = 0.0
        created_at = [r.create_timestamp.timestamp() - t0 for r in records.values()]
        while start < wall:
            end = start + step
            out_here = sum(1 for o, _ in in_queue if start <= o - t0 < end)
            ended_here = sum(1 for e in ends if e and start <= e - t0 < end)
            overlap = sum(max(0.0, min(b - t0, end) - max(a - t0, start)) for a, b in in_queue)
            waiting = sum(1 for run_id, c in zip(records, created_at)
                          if c < end and (dequeued.get(run_id) or float("inf")) - t0 >= end)
            print(f"{start:7.0f} {min(end, wall):7.0f} {out_here:9d} {ended_here:6d} "
                  f"{overlap / (min(end, wall) - start):19.2f} {waiting:14d}")
            start = end
        return 0 if succeeded == expected and not failures else 1
    except SystemExit:
        log_file = folder / "daemon.log"
        if log_file.exists():
            print("".join(log_file.read_text(errors="replace").splitlines(keepends=True)[-40:]), file=sys.stderr)
        raise
    finally:
        if daemon is not None:
            stop(daemon)
        if postgres is not None:
            postgres.close()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
