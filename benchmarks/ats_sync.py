"""ATS sync: polite fetching against rate-limited hosts, and backfills of many boards.

Part A (pacing): two local servers, one acting as the Greenhouse host and one as the Lever host,
each enforcing its own rate limit (`--rate` requests/second, answering 429 + Retry-After when asked
faster). K = `--boards` boards, half Greenhouse boards and half Lever sites (each Lever site has
fewer postings than a page, so one request per site), with small generated payloads. Every board
is fetched with the product's connectors over ONE `PoliteClient(HttpPolicy(requests_per_second=
--rate))`; the two hosts are fetched concurrently, one thread per source, as the two lanes
(pools `greenhouse_api` and `lever_api`) would run side by side. The floor is
K / (rate x hosts); the target is a wall time close to it with no 429 at all.

Part B (backfill): for each size in `--backfill-boards` (default 1,000 and 10,000), each store in
`--stores` (sqlite: a file in a temporary folder; postgresql: a scratch database) and each Dagster
instance in `--instances` (sqlite: SQLite storage in a temporary folder with the instance class of the
project's dagster.yaml, as `dagster dev`'s; sqlite-dagster: Dagster's own instance, for comparison; postgresql:
a scratch database, as production's), in a fresh subprocess (so its peak memory is its own): that many
Greenhouse board partitions registered on the instance, a local server with no rate limit answering
each board's canned payload (a few jobs), and one `dg.materialize` of the Greenhouse lane (raw_snapshot
-> postings -> job_diff) per range of JOBSYNC_BACKFILL_BOARDS_PER_RUN boards (1,000 by default), one
after the other, as the backfill daemon runs the lane's `BackfillPolicy.multi_run`. Reports wall
time, boards/second, each step's time, Dagster's own overhead (the run's time outside its steps, and the
time the steps spent in Dagster storing their events) per board, the events stored per board, the peak
memory of the process, the runs on the instance (one per range) and the jobs in the store. Targets: at least
50 boards/s, Dagster's overhead at most 10 ms per board.

    python benchmarks/ats_sync.py [--boards 200] [--rate 1.0] [--backfill-boards 1000 10000]
                                  [--stores sqlite postgresql] [--instances sqlite postgresql]
                                  [--pg-url URL] [--skip-a] [--skip-b]

A quick run: `python benchmarks/ats_sync.py --boards 20 --rate 5 --backfill-boards 100 --stores sqlite
--instances sqlite`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere: the package and its test helpers

import dagster as dg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

from jobsync_pipeline.defs.lanes import build_source_lane  # noqa: E402
from jobsync_pipeline.settings import backfill_boards_per_run  # noqa: E402
from jobsync_pipeline.defs.run_tags import range_tags  # noqa: E402
from jobsync_pipeline.defs.resources import HttpResource, StoreResource, SyncPolicyResource  # noqa: E402
from jobsync_pipeline.defs.source_specs import GREENHOUSE  # noqa: E402
from jobsync_pipeline.sources.greenhouse import GreenhouseConnector, parse_greenhouse  # noqa: E402
from jobsync_pipeline.sources.http import HttpPolicy, PoliteClient  # noqa: E402
from jobsync_pipeline.sources.lever import LeverConnector, parse_lever  # noqa: E402
from jobsync_pipeline.store import tables  # noqa: E402
from jobsync_pipeline.store.engine import upgrade  # noqa: E402
from jobsync_pipeline_tests.http_server import LocalServer, json_reply  # noqa: E402

JOBS_PER_BOARD = 3  # "a few jobs" per board, both parts
LEVER_PAGE_SIZE = 100  # the connector's default page; every generated site has fewer postings
UNPACED_RPS = 1e9  # HttpResource needs a rate > 0: this one never makes a request wait
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/"
TARGET_BOARDS_PER_SECOND = 50
TARGET_OVERHEAD_MS = 10


# ---------------------------------------------------------------------------------------------
# Generated payloads
# ---------------------------------------------------------------------------------------------

def greenhouse_document(board: str, jobs: int = JOBS_PER_BOARD) -> dict:
    return {"jobs": [{
        "id": 7_000_000 + n, "title": f"Engineer {n} at {board}",
        "absolute_url": f"https://job-boards.greenhouse.io/{board}/jobs/{7_000_000 + n}",
        "location": {"name": "Berlin, Germany" if n % 2 else "Remote (EU)"},
        "content": f"&lt;p&gt;Build &amp;amp; run the {board} platform, role {n}.&lt;/p&gt;",
        "company_name": board.replace("-", " ").title(),
        "updated_at": "2026-11-20T10:00:00-05:00", "first_published": "2026-11-01T09:00:00-05:00",
    } for n in range(jobs)], "meta": {"total": jobs}}


def lever_page(site: str, postings: int = JOBS_PER_BOARD) -> list[dict]:
    return [{
        "id": f"{site}-{n:04d}-0000-4000-8000-000000000000", "text": f"Designer {n} at {site}",
        "hostedUrl": f"https://jobs.lever.co/{site}/{n}",
        "categories": {"location": "Lisbon, Portugal", "team": "Product", "commitment": "Full-time"},
        "createdAt": 1_763_000_000_000 + n, "descriptionPlain": f"Design things at {site}, role {n}.",
        "lists": [{"text": "Requirements", "content": "<li>Figma</li><li>Curiosity</li>"}],
    } for n in range(postings)]


# ---------------------------------------------------------------------------------------------
# Part A: K boards against two rate-limited hosts
# ---------------------------------------------------------------------------------------------

def part_a(k: int, rate: float) -> dict:
    n_greenhouse, n_lever = (k + 1) // 2, k // 2
    gh_boards = [f"gh-board-{i:04d}" for i in range(n_greenhouse)]
    lv_sites = [f"lever-site-{i:04d}" for i in range(n_lever)]
    gh_routes = {f"/v1/boards/{b}/jobs": json_reply(greenhouse_document(b)) for b in gh_boards}
    lv_routes = {f"/v0/postings/{s}": json_reply(lever_page(s)) for s in lv_sites}
    hosts = int(bool(gh_boards)) + int(bool(lv_sites))
    floor = k / (rate * hosts)
    print(f"Part A: K = {k} boards ({n_greenhouse} Greenhouse + {n_lever} Lever), {hosts} hosts, "
          f"server limit and client pace {rate:g} req/s per host; floor K/(rate x hosts) = {floor:.1f} s")
    print("        one PoliteClient shared by two threads, one per source host (as the greenhouse_api and "
          "lever_api pools run two lanes at once)", flush=True)

    with ExitStack() as stack:
        gh_server = stack.enter_context(LocalServer(gh_routes, rate_limit=rate))
        lv_server = stack.enter_context(LocalServer(lv_routes, rate_limit=rate))
        client = stack.enter_context(PoliteClient(HttpPolicy(requests_per_second=rate)))
        lanes = {
            "greenhouse": (GreenhouseConnector(client, gh_server.base_url), gh_boards, parse_greenhouse),
            "lever": (LeverConnector(client, lv_server.base_url, page_size=LEVER_PAGE_SIZE), lv_sites,
                      parse_lever),
        }
        payloads: dict[str, list] = {name: [] for name in lanes}
        errors: dict[str, list[str]] = {name: [] for name in lanes}
        finished: dict[str, float] = {}
        start = time.monotonic()

        def fetch_all(name: str) -> None:
            connector, boards, _ = lanes[name]
            for board in boards:
                try:
                    payloads[name].append(connector.fetch(board))
                except Exception as exc:  # noqa: BLE001 - counted and shown, the benchmark goes on
                    errors[name].append(f"{board}: {type(exc).__name__}: {exc}")
            finished[name] = time.monotonic() - start

        threads = [threading.Thread(target=fetch_all, args=(name,), name=f"fetch-{name}") for name in lanes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - start

        # Outside the timing: every payload must parse to exactly the generated postings.
        postings = {name: sum(lanes[name][2](p).found for p in payloads[name]) for name in lanes}
        servers = {"greenhouse": gh_server, "lever": lv_server}
        per_host = {}
        for name, server in servers.items():
            times = sorted(h.at for h in server.hits)
            gaps = [b - a for a, b in zip(times, times[1:])]
            per_host[name] = {
                "boards": len(lanes[name][1]), "requests": server.count(), "ok": server.count(200),
                "429": server.count(429), "max_in_1s": server.max_in_window(1.0),
                "mean_gap": sum(gaps) / len(gaps) if gaps else float("nan"),
                "min_gap": min(gaps) if gaps else float("nan"),
                "finished": finished.get(name, float("nan")), "postings": postings[name],
                "errors": errors[name],
            }
        stats = client.stats

    # The first request to a host goes at once, so strict pacing alone needs (requests - 1) intervals.
    paced = max((h["requests"] - 1) / rate for h in per_host.values())
    result = {"k": k, "rate": rate, "hosts": hosts, "wall": wall, "floor": floor, "ratio": wall / floor,
              "paced": paced,
              "per_host": per_host, "server_429": sum(h["429"] for h in per_host.values()),
              "requests": sum(h["requests"] for h in per_host.values()),
              "client_requests": stats.requests, "client_retries": stats.retries,
              "client_throttled": stats.throttled, "client_waited": stats.waited,
              "errors": sum(len(h["errors"]) for h in per_host.values())}
    print(f"        wall {wall:.2f} s = {result['ratio']:.3f} x floor; server 429s {result['server_429']}, "
          f"client retries {stats.retries}")
    print(f"        strict pacing minimum (requests per host - 1) / rate = {paced:.2f} s, so the overhead "
          f"over it is {wall - paced:.3f} s; client waited {stats.waited:.1f} s for host slots in all")
    for name, h in per_host.items():
        print(f"        {name:<10} {h['boards']:>4} boards, {h['requests']:>4} requests ({h['ok']} ok, "
              f"{h['429']} x 429), done at {h['finished']:.2f} s, gap between arrivals mean "
              f"{h['mean_gap']:.4f} s / min {h['min_gap']:.4f} s (pace {1 / rate:.4f} s), "
              f"max {h['max_in_1s']} in any 1 s, {h['postings']} postings parsed")
        for line in h["errors"][:5]:
            print(f"          error: {line}")
    print(flush=True)
    return result


# ---------------------------------------------------------------------------------------------
# Part B: a backfill of many board partitions
# ---------------------------------------------------------------------------------------------

class ScratchDatabase:
    """An empty PostgreSQL database for one measurement, dropped afterwards."""

    def __init__(self, server_url: str, purpose: str):
        self.server_url = server_url.rstrip("/") + "/"
        self.name = f"ats_sync_{purpose}_{secrets.token_hex(4)}"
        self.url = self.server_url + self.name

    def _admin(self, sql: str) -> None:
        engine = sa.create_engine(self.server_url + "postgres", isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()

    def __enter__(self) -> "ScratchDatabase":
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class EventTimer:
    """The time the run spends in Dagster storing its events (`DagsterInstance.handle_new_event`)."""

    def __init__(self, instance: dg.DagsterInstance):
        self.seconds, self.events = 0.0, 0
        handle = instance.handle_new_event

        def timed(event, *args, **kwargs):
            started = time.perf_counter()
            try:
                return handle(event, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.events += 1

        instance.handle_new_event = timed  # the instance's log handler looks the method up on it


def project_instance_class(config: str = "dagster.yaml") -> dict:
    """The `instance_class` the project's dagster.yaml (the embedded instance's) or deploy/dagster.yaml
    (production's) sets, if any."""
    return yaml.safe_load((HERE.parent / config).read_text()).get("instance_class") or {}


def part_b(n: int, store: str, instance_kind: str, pg_url: str) -> dict:
    """One backfill of `n` boards (run in a subprocess of its own: see `main`)."""
    boards = [f"bench-board-{i:05d}" for i in range(n)]
    per_run = backfill_boards_per_run()
    routes = {f"/v1/boards/{b}/jobs": json_reply(greenhouse_document(b)) for b in boards}
    lane = build_source_lane(GREENHOUSE)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ats_sync_")))
        url = (stack.enter_context(ScratchDatabase(pg_url, "store")).url if store == "postgresql"
               else f"sqlite:///{folder / 'jobsync.db'}")
        upgrade(url)  # the schema, as `jobsync db upgrade` makes it
        if instance_kind == "postgresql":
            instance_url = stack.enter_context(ScratchDatabase(pg_url, "instance")).url
            instance = stack.enter_context(dg.instance_for_test(  # with production's instance class
                overrides={"storage": {"postgres": {"postgres_url": instance_url}},
                           "instance_class": project_instance_class("deploy/dagster.yaml")}))
        elif instance_kind == "sqlite":  # SQLite in a temp folder with the project's instance class, as `dagster dev`'s
            instance = stack.enter_context(dg.instance_for_test(
                overrides={"instance_class": project_instance_class()}))
        else:  # Dagster's own SQLite storage (`storage: sqlite:`), for comparison
            instance = stack.enter_context(dg.instance_for_test())
        server = stack.enter_context(LocalServer(routes))
        instance.add_dynamic_partitions(GREENHOUSE.partitions_name, boards)
        keys = instance.get_dynamic_partitions(GREENHOUSE.partitions_name)
        assert keys[0] == boards[0] and keys[-1] == boards[-1], "the range must cover exactly the boards"
        resources = {
            "store": StoreResource(url=url),
            "http": HttpResource(requests_per_second=UNPACED_RPS, greenhouse_base_url=server.base_url,
                                 pacing_store_url=url),  # slots shared through the store, as in production
            "sync_policy": SyncPolicyResource(),
        }
        # The console logger would print thousands of events; warnings and errors still show.
        run_config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        timer = EventTimer(instance)
        # as the backfill daemon runs a lane's backfill: one run per range of BACKFILL_BOARDS_PER_RUN boards
        results, steps, in_steps_wall = [], {}, 0.0
        start = time.monotonic()
        for first in range(0, n, per_run):
            chunk = boards[first:first + per_run]
            results.append(dg.materialize(lane.assets, instance=instance, resources=resources, run_config=run_config,
                                          tags=range_tags(chunk[0], chunk[-1]), raise_on_error=False))
            stats = instance.get_run_step_stats(results[-1].run_id)
            for s in stats:
                steps[s.step_key] = steps.get(s.step_key, 0.0) + (s.end_time or 0) - (s.start_time or 0)
            in_steps_wall += (max(s.end_time for s in stats if s.end_time)
                              - min(s.start_time for s in stats if s.start_time))
        wall = time.monotonic() - start
        run_ids = [r.run_id for r in results]
        runs = instance.get_runs_count()
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                jobs = conn.execute(sa.select(sa.func.count()).select_from(tables.jobs).where(
                    tables.jobs.c.source == GREENHOUSE.name, tables.jobs.c.board.in_(boards))).scalar_one()
                synced = conn.execute(sa.select(sa.func.count()).select_from(tables.syncs).where(
                    tables.syncs.c.run_id.in_(run_ids), tables.syncs.c.status == "success")).scalar_one()
        finally:
            engine.dispose()
        requests = server.count()
        partitions_done = {
            stage: len({m.partition for r in results for m in r.asset_materializations_for_node(f"greenhouse__{stage}")})
            for stage in ("raw_snapshot", "postings", "job_diff")}

    outside = wall - sum(steps.values())
    # the events the steps stored (those before the first step and after the last are in `outside`)
    in_steps = timer.seconds * in_steps_wall / wall if wall else 0.0
    overhead = outside + in_steps
    success = all(r.success for r in results)
    out = {"n": n, "wall": wall, "rate": n / wall, "runs": runs, "expected_runs": len(results), "success": success,
           "jobs": jobs,
           "expected_jobs": n * JOBS_PER_BOARD, "synced": synced, "requests": requests, "steps": steps,
           "partitions": partitions_done, "store": store, "instance": instance_kind, "outside": outside,
           "event_seconds": timer.seconds, "events": timer.events, "overhead_ms": overhead / n * 1000,
           "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(f"        wall {wall:.2f} s, {out['rate']:.1f} boards/s, runs {runs}, success {success}, "
          f"{requests} requests, {synced} successful syncs, {jobs} jobs in store (expected {out['expected_jobs']})")
    print("        steps: " + ", ".join(f"{k.removeprefix('greenhouse__')} {v:.2f} s" for k, v in steps.items())
          + f"; outside the steps (run creation, planned events, teardown) {outside:.2f} s")
    print(f"        Dagster storing events: {timer.events} events ({timer.events / n:.2f} per board) in "
          f"{timer.seconds:.2f} s; Dagster's overhead {out['overhead_ms']:.1f} ms per board; "
          f"peak memory {out['peak_mb']:.0f} MB")
    print("        partitions materialized: " + json.dumps(partitions_done))
    print(flush=True)
    return out


def part_b_in_subprocess(n: int, store: str, instance_kind: str, pg_url: str) -> dict:
    print(f"Part B: backfill of {n} Greenhouse board partitions ({JOBS_PER_BOARD} jobs each) in runs of at most "
          f"{backfill_boards_per_run()}, canned responses, no rate limit; store {store}, Dagster instance "
          f"{instance_kind}", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, __file__, "--child", json.dumps(
            {"n": n, "store": store, "instance": instance_kind, "pg_url": pg_url, "out": out.name})], check=True)
        return json.loads(Path(out.name).read_text())


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

def summary(a: dict | None, bs: list[dict]) -> bool:
    rows: list[tuple[str, str, str]] = []
    ok = True
    if a:
        a_ok = a["server_429"] == 0 and a["errors"] == 0
        ok &= a_ok
        rows += [
            ("A", "boards fetched (K), hosts, rate", f"{a['k']}, {a['hosts']}, {a['rate']:g} req/s per host"),
            ("A", "wall time", f"{a['wall']:.2f} s"),
            ("A", "floor K / (rate x hosts)", f"{a['floor']:.2f} s"),
            ("A", "wall / floor", f"{a['ratio']:.3f}"),
            ("A", "strict pacing minimum (n/host - 1) / rate", f"{a['paced']:.2f} s"),
            *[("A", f"requests seen by {name} server", f"{h['requests']} ({h['429']} x 429)")
              for name, h in a["per_host"].items()],
            ("A", "429s seen by the servers (target 0)", f"{a['server_429']}  {'OK' if a['server_429'] == 0 else 'MISSED'}"),
            ("A", "client requests / retries / 429s", f"{a['client_requests']} / {a['client_retries']} / "
                                                      f"{a['client_throttled']}"),
            ("A", "boards failed", str(a["errors"])),
        ]
    width = max((len(r[1]) for r in rows), default=0)
    if rows:
        print("Summary")
        print(f"  part  {'figure':<{width}}  value")
        print(f"  ----  {'-' * width}  {'-' * 30}")
        for part, name, value in rows:
            print(f"  {part:<4}  {name:<{width}}  {value}")
    if bs:
        print(f"\nPart B: backfills, in runs of at most {backfill_boards_per_run()} boards (targets: >= {TARGET_BOARDS_PER_SECOND} boards/s, Dagster's overhead "
              f"<= {TARGET_OVERHEAD_MS} ms/board)")
        print(f"  {'boards':>6}  {'store':<10}  {'instance':<10}  {'wall s':>7}  {'boards/s':>8}  {'raw s':>6}  "
              f"{'post s':>6}  {'diff s':>6}  {'outside s':>9}  {'events/board':>12}  {'dagster ms/board':>16}  "
              f"{'peak MB':>7}  checks")
        for b in bs:
            b_ok = (b["runs"] == b["expected_runs"] and b["success"] and b["jobs"] == b["expected_jobs"] and b["synced"] == b["n"])
            ok &= b_ok
            met = b["rate"] >= TARGET_BOARDS_PER_SECOND and b["overhead_ms"] <= TARGET_OVERHEAD_MS
            step = {k.removeprefix("greenhouse__"): v for k, v in b["steps"].items()}
            print(f"  {b['n']:>6}  {b['store']:<10}  {b['instance']:<10}  {b['wall']:>7.1f}  {b['rate']:>8.1f}  "
                  f"{step.get('raw_snapshot', 0):>6.1f}  {step.get('postings', 0):>6.1f}  {step.get('job_diff', 0):>6.1f}  "
                  f"{b['outside']:>9.1f}  {b['events'] / b['n']:>12.2f}  {b['overhead_ms']:>16.1f}  {b['peak_mb']:>7.0f}  "
                  f"{'ok' if b_ok else 'WRONG (runs, success, jobs or syncs)'}, target {'met' if met else 'MISSED'}")
    print(f"  {'all checks passed' if ok else 'SOME CHECKS FAILED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # one part B measurement, in a process of its own
        job = json.loads(argv[1])
        result = part_b(job["n"], job["store"], job["instance"], job["pg_url"])
        Path(job["out"]).write_text(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=200, help="K: boards in part A, split over two hosts")
    parser.add_argument("--rate", type=float, default=1.0, help="requests/second per host in part A")
    parser.add_argument("--backfill-boards", type=int, nargs="+", default=[1000, 10000],
                        help="board partitions in part B (one backfill per size)")
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"],
                        help="jobsync stores of part B: a SQLite file in a temp folder, a scratch PostgreSQL database")
    parser.add_argument("--instances", nargs="+", choices=("sqlite", "sqlite-dagster", "postgresql"),
                        default=["sqlite", "postgresql"],
                        help="Dagster instances of part B: SQLite in a temp folder with the project's instance class, "
                             "Dagster's own, a scratch PostgreSQL database")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="the PostgreSQL server for scratch databases")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"ats_sync benchmark: Python {platform.python_version()}, dagster {dg.__version__}, "
          f"{os.cpu_count()} CPUs, load average {load} (a shared machine makes part B noisy)\n", flush=True)
    if args.boards < 1 or args.rate <= 0 or min(args.backfill_boards) < 1:
        parser.error("--boards and --backfill-boards must be >= 1 and --rate > 0")
    a = None if args.skip_a else part_a(args.boards, args.rate)
    bs = [] if args.skip_b else [part_b_in_subprocess(n, store, instance, args.pg_url)
                                 for n in args.backfill_boards for store in args.stores for instance in args.instances]
    return 0 if summary(a, bs) else 1


if __name__ == "__main__":
    sys.exit(main())
