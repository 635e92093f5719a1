"""ATS sync: polite fetching against rate-limited hosts, and a single-run backfill of many boards.

Part A (pacing): two local servers, one acting as the Greenhouse host and one as the Lever host,
each enforcing its own rate limit (`--rate` requests/second, answering 429 + Retry-After when asked
faster). K = `--boards` boards, half Greenhouse boards and half Lever sites (each Lever site has
fewer postings than a page, so one request per site), with small generated payloads. Every board
is fetched with the product's connectors over ONE `PoliteClient(HttpPolicy(requests_per_second=
--rate))`; the two hosts are fetched concurrently, one thread per source, as the two lanes
(pools `greenhouse_api` and `lever_api`) would run side by side. The floor is
K / (rate x hosts); the target is a wall time close to it with no 429 at all.

Part B (backfill): `--backfill-boards` Greenhouse board partitions registered on a temporary Dagster
instance, a local server with no rate limit answering each board's canned payload (a few jobs), and
ONE `dg.materialize` of the Greenhouse lane (raw_snapshot -> postings -> job_diff) over the range
of every partition, as a single-run backfill does, into a SQLite store in a temporary folder (or
`--store-url`, e.g. a scratch PostgreSQL database). Reports wall time, boards/second, the number of
runs on the instance (must be 1) and the jobs in the store.

    python benchmarks/ats_sync.py [--boards 200] [--rate 1.0] [--backfill-boards 1000]
                                  [--store-url URL] [--instance temp|ephemeral] [--skip-a] [--skip-b]

A quick run: `python benchmarks/ats_sync.py --boards 20 --rate 5 --backfill-boards 100`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
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

from jobsync_pipeline.defs.lanes import build_source_lane  # noqa: E402
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
# Part B: a single-run backfill of many board partitions
# ---------------------------------------------------------------------------------------------

def _instance(kind: str, stack: ExitStack) -> dg.DagsterInstance:
    if kind == "ephemeral":
        return dg.DagsterInstance.ephemeral()
    return stack.enter_context(dg.instance_for_test())  # SQLite run/event storage in a temp folder


def part_b(n: int, store_url: str | None, instance_kind: str) -> dict:
    boards = [f"bench-board-{i:05d}" for i in range(n)]
    routes = {f"/v1/boards/{b}/jobs": json_reply(greenhouse_document(b)) for b in boards}
    lane = build_source_lane(GREENHOUSE)
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ats_sync_")))
        url = store_url or f"sqlite:///{folder / 'jobsync.db'}"
        store_label = url.split("://", 1)[0] if store_url else "sqlite (temp file)"
        upgrade(url)  # the schema, as `jobsync db upgrade` makes it
        print(f"Part B: single-run backfill of {n} Greenhouse board partitions ({JOBS_PER_BOARD} jobs each), "
              f"canned responses, no rate limit; store {store_label}, instance {instance_kind}", flush=True)
        instance = _instance(instance_kind, stack)
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
        start = time.monotonic()
        result = dg.materialize(lane.assets, instance=instance, resources=resources, run_config=run_config,
                                tags=range_tags(boards[0], boards[-1]), raise_on_error=False)
        wall = time.monotonic() - start

        runs = instance.get_runs_count()
        steps = {s.step_key: (s.end_time or 0) - (s.start_time or 0)
                 for s in instance.get_run_step_stats(result.run_id)}
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                jobs = conn.execute(sa.select(sa.func.count()).select_from(tables.jobs).where(
                    tables.jobs.c.source == GREENHOUSE.name, tables.jobs.c.board.in_(boards))).scalar_one()
                synced = conn.execute(sa.select(sa.func.count()).select_from(tables.syncs).where(
                    tables.syncs.c.run_id == result.run_id, tables.syncs.c.status == "success")).scalar_one()
        finally:
            engine.dispose()
        requests = server.count()
        partitions_done = {
            stage: len({m.partition for m in result.asset_materializations_for_node(f"greenhouse__{stage}")})
            for stage in ("raw_snapshot", "postings", "job_diff")}

    out = {"n": n, "wall": wall, "rate": n / wall, "runs": runs, "success": result.success, "jobs": jobs,
           "expected_jobs": n * JOBS_PER_BOARD, "synced": synced, "requests": requests, "steps": steps,
           "partitions": partitions_done, "store": store_label, "instance": instance_kind}
    print(f"        wall {wall:.2f} s, {out['rate']:.1f} boards/s, runs {runs}, success {result.success}, "
          f"{requests} requests, {synced} successful syncs, {jobs} jobs in store "
          f"(expected {out['expected_jobs']})")
    print("        steps: " + ", ".join(f"{k.removeprefix('greenhouse__')} {v:.2f} s" for k, v in steps.items())
          + f"; outside the steps (run creation, planned events, teardown) {wall - sum(steps.values()):.2f} s")
    print("        partitions materialized: " + json.dumps(partitions_done))
    print(flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------

def summary(a: dict | None, b: dict | None) -> bool:
    rows: list[tuple[str, str, str]] = []
    ok = True
    if a:
        a_ok = a["server_429"] == 0 and a["errors"] == 0
        ok &= a_ok
        rows += [
            ("A", f"boards fetched (K), hosts, rate", f"{a['k']}, {a['hosts']}, {a['rate']:g} req/s per host"),
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
    if b:
        b_ok = (b["runs"] == 1 and b["success"] and b["jobs"] == b["expected_jobs"]
                and b["synced"] == b["n"])
        ok &= b_ok
        rows += [
            ("B", "board partitions in the backfill", f"{b['n']} ({b['store']}, {b['instance']} instance)"),
            ("B", "wall time (one dg.materialize)", f"{b['wall']:.2f} s"),
            ("B", "boards / second", f"{b['rate']:.1f}"),
            *[("B", f"  step {k.removeprefix('greenhouse__')}", f"{v:.2f} s") for k, v in b["steps"].items()],
            ("B", "  outside the steps", f"{b['wall'] - sum(b['steps'].values()):.2f} s"),
            ("B", "runs (must be 1)", f"{b['runs']}  {'OK' if b['runs'] == 1 else 'WRONG'}"),
            ("B", "run succeeded", str(b["success"])),
            ("B", "jobs in store (expected)", f"{b['jobs']} ({b['expected_jobs']})"),
            ("B", "successful board syncs", f"{b['synced']} / {b['n']}"),
        ]
    width = max(len(r[1]) for r in rows) if rows else 0
    print("Summary")
    print(f"  part  {'figure':<{width}}  value")
    print(f"  ----  {'-' * width}  {'-' * 30}")
    for part, name, value in rows:
        print(f"  {part:<4}  {name:<{width}}  {value}")
    print(f"  {'all checks passed' if ok else 'SOME CHECKS FAILED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boards", type=int, default=200, help="K: boards in part A, split over two hosts")
    parser.add_argument("--rate", type=float, default=1.0, help="requests/second per host in part A")
    parser.add_argument("--backfill-boards", type=int, default=1000, help="board partitions in part B")
    parser.add_argument("--store-url", default=None,
                        help="store of part B (an empty scratch database, e.g. postgresql://...); "
                             "default: SQLite in a temporary folder")
    parser.add_argument("--instance", choices=("temp", "ephemeral"), default="temp",
                        help="Dagster instance of part B: SQLite storage in a temp folder, or in memory")
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"ats_sync benchmark: Python {platform.python_version()}, dagster {dg.__version__}, "
          f"{os.cpu_count()} CPUs, load average {load} (a shared machine makes part B noisy)\n", flush=True)
    if args.boards < 1 or args.rate <= 0 or args.backfill_boards < 1:
        parser.error("--boards and --backfill-boards must be >= 1 and --rate > 0")
    a = None if args.skip_a else part_a(args.boards, args.rate)
    b = None if args.skip_b else part_b(args.backfill_boards, args.store_url, args.instance)
    return 0 if summary(a, b) else 1


if __name__ == "__main__":
    sys.exit(main())
