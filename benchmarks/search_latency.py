"""How long executing a saved search takes over a large catalog (issue 15's figures, first part).

    .venv/bin/python benchmarks/search_latency.py [--sizes 100000 1000000] [--stores sqlite postgresql]
                                                  [--searches 50] [--postgres URL]

For each size and store it builds a catalog of that many open jobs through the product's own apply
(`Store.apply_snapshot`, so the full-text index is kept as the lanes keep it: FTS5 triggers on SQLite,
the generated tsvector on PostgreSQL), in boards of 10,000, a tenth of them listed by a second source
under the same dedupe key (so the canonical test has work to do). Then it executes `--searches`
varied saved searches (seeded: keywords, locations, remote, categories, salary, recency, alone and
combined) with `SearchStore.execute`, each three times, and prints the median and p95 of the best of
the three, and the median number of matches. Target: p95 under 50 ms at 1,000,000 on PostgreSQL.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from jobsync_pipeline.core.models import Posting, PostingDetails, postings_frame
from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.store.engine import upgrade
from jobsync_pipeline.store.repo import Store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
BOARD_SIZE = 10_000
ROLES = ["Software Engineer", "Data Scientist", "Product Manager", "Product Designer", "Account Executive",
         "Customer Success Manager", "Data Engineer", "DevOps Engineer", "Recruiter", "Financial Analyst",
         "Marketing Manager", "Support Specialist", "Machine Learning Engineer", "Frontend Developer",
         "Backend Developer", "Site Reliability Engineer", "Sales Development Representative", "Controller"]
SENIORITY = ["", "Senior ", "Staff ", "Lead ", "Junior ", "Principal "]
SKILLS = ["python", "java", "golang", "rust", "react", "typescript", "kubernetes", "terraform", "sql", "spark",
          "figma", "salesforce", "excel", "django", "node", "aws", "gcp", "azure", "kafka", "airflow"]
PLACES = [("London, UK", None), ("Berlin, Germany", None), ("Paris, France", None), ("New York, NY", None),
          ("Remote - US", "remote"), ("Remote (EU)", "remote"), ("Toronto, Canada", None), ("Madrid, Spain", None),
          ("Hybrid - Amsterdam, Netherlands", "hybrid"), ("Anywhere", "remote")]
FILLER = ("We are a growing team building tools for customers around the world. You will work with "
          "engineers, designers and product people, own your work end to end, and ship often. ")


def postings(board: str, start: int, count: int, rng: random.Random, source: str = "greenhouse") -> list[Posting]:
    out = []
    for i in range(start, start + count):
        role = rng.choice(ROLES)
        skills = rng.sample(SKILLS, 4)
        place, workplace = rng.choice(PLACES)
        salary = rng.choice([None, None, rng.randrange(40, 250) * 1000])
        posted = (NOW - timedelta(days=rng.randrange(0, 90))).date().isoformat()
        out.append(Posting(
            source=source, board=board, external_id=f"{board}-{i}", title=f"{rng.choice(SENIORITY)}{role}",
            company=f"Company {i % 5000}", location=place, url=f"https://example.org/{board}/{i}",
            description=f"{FILLER}Skills: {', '.join(skills)}. " + FILLER * rng.randrange(1, 4), posted_date=posted,
            details=PostingDetails(workplace_type=workplace, salary_min=salary, salary_max=salary and salary * 1.2,
                                   salary_currency="USD" if salary else None, salary_interval="year" if salary else None)))
    return out


def build(url: str, size: int, seed: int) -> float:
    upgrade(url)
    store = Store(url)
    rng = random.Random(seed)
    started = time.perf_counter()
    for number, start in enumerate(range(0, size, BOARD_SIZE)):
        board = f"b{number:04d}"
        store.ensure_boards("greenhouse", [board])
        sync_id = store.start_sync("greenhouse", board, run_id=None)
        store.apply_snapshot("greenhouse", board, [postings_frame(postings(board, start, min(BOARD_SIZE, size - start),
                                                                           rng))], sync_id=sync_id, now=NOW)
    # a tenth listed again by a feed under the same dedupe key: one canonical job each
    copies = postings("b0000", 0, max(1, size // 10), random.Random(seed), source="remoteok")
    store.ensure_boards("remoteok", ["python"])
    sync_id = store.start_sync("remoteok", "python", run_id=None)
    from jobsync_pipeline.store.apply import Expiry
    store.apply_snapshot("remoteok", "python", [postings_frame(copies)], sync_id=sync_id, now=NOW,
                         expiry=Expiry(complete=False, max_age=timedelta(days=30)), jobs_board="all")
    with store.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    store.engine.dispose()
    return time.perf_counter() - started


def searches(count: int, seed: int) -> list[SearchParameters]:
    rng = random.Random(seed)
    made = []
    while len(made) < count:
        fields = {}
        for name, chance in (("keywords", 0.7), ("locations", 0.4), ("remote", 0.2), ("categories", 0.3),
                             ("min_salary", 0.2), ("posted_within_days", 0.3)):
            if rng.random() < chance:
                fields[name] = {
                    "keywords": lambda: " ".join(rng.sample(SKILLS + ["senior", "engineer", "data", "manager"],
                                                            rng.choice([1, 1, 2]))),
                    "locations": lambda: tuple(rng.sample(["London", "Berlin", "Germany", "US", "Paris", "EU"],
                                                          rng.choice([1, 2]))),
                    "remote": lambda: True,
                    "categories": lambda: (rng.choice(["engineering", "data", "sales", "product", "design"]),),
                    "min_salary": lambda: float(rng.choice([60_000, 100_000, 150_000])),
                    "posted_within_days": lambda: rng.choice([7, 14, 30]),
                }[name]()
        if fields:
            made.append(SearchParameters(**fields))
    return made


def measure(url: str, queries: list[SearchParameters]) -> tuple[float, float, float]:
    store = Store(url)
    times, matches = [], []
    for parameters in queries:
        best = None
        for _ in range(3):
            started = time.perf_counter()
            _, total, _ = store.searches.execute(parameters, now=NOW, limit=500)
            elapsed = time.perf_counter() - started
            best = elapsed if best is None else min(best, elapsed)
        times.append(best * 1000)
        matches.append(total)
    store.engine.dispose()
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], statistics.median(matches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--searches", type=int, default=50)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--postgres", default=os.environ.get("JOBSYNC_BENCH_POSTGRES",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    queries = searches(args.searches, args.seed)
    print(f"{'store':<10} {'jobs':>10} {'build s':>8} {'median ms':>10} {'p95 ms':>8} {'median matches':>15}")
    for size in args.sizes:
        for kind in args.stores:
            with tempfile.TemporaryDirectory() as folder:
                if kind == "sqlite":
                    url = f"sqlite:///{Path(folder) / 'search.db'}"
                else:
                    name = f"jobsync_search_bench_{os.getpid()}"
                    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
                    with admin.connect() as conn:
                        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
                        conn.execute(sa.text(f"CREATE DATABASE {name}"))
                    url = sa.make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
                try:
                    built = build(url, size, args.seed)
                    median, p95, found = measure(url, queries)
                    print(f"{kind:<10} {size:>10,} {built:>8.1f} {median:>10.1f} {p95:>8.1f} {found:>15,.0f}", flush=True)
                finally:
                    if kind == "postgresql":
                        with admin.connect() as conn:
                            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        admin.dispose()


if __name__ == "__main__":
    main()
