"""Wall time and peak memory of the store's snapshot apply, against the floor of reading and hashing.

For each size (default 100,000 and 1,000,000 postings) the script generates two seeded snapshots of
one board as JSON Lines of company-file jobs under `benchmarks/out/` (cached between runs):

* A, the previous snapshot;
* B: 5 % of A gone, 5 % new ids added, 3 % of the size changed (a different description).

For each store (SQLite file in a temporary folder, PostgreSQL scratch database) it then runs, each
phase in a fresh subprocess so that peak memory (the child's ru_maxrss) never leaks between phases:

* floor: read B's file in chunks, json-decode every line and compute the product's content hash
  (`core.normalize.content_hash` over `CONTENT_FIELDS`, requirements as the JSON the product hashes),
  nothing else; run once before the first apply and once after each, the fastest run counts;
* plain floor: the limit for a Python reader: read B's file in chunks, `json.loads` each line and an
  md5 over its values joined (`"\x1f".join(str(v) for v in job.values())`), nothing else; run beside
  the floor each time, the fastest run counts;
* load (untimed): apply A to a fresh store, kept (a copy, or a template database) for the repeats;
* apply, `--repeat` times (default 3), each onto a fresh copy of the loaded store: read the board's
  known records (`Store.known_records`), read B in chunks of lines (bytes), recognise the lines the
  store's jobs were written from by their digests and decode, validate and normalize the others with
  the product's `JobNormalizer.frame_texts` (msgspec, with the pydantic path for the lines it refuses),
  and stream the chunks into `Store.apply_snapshot` (one transaction); the counts must be exactly the
  expected ones; the fastest apply counts, all are printed (this machine is shared: timeit's best-of-N
  for both sides);
  on SQLite a large apply's commit leaves the checkpoint of its WAL to a thread of its own; the
  time from the apply's return to that checkpoint's end is reported beside it, and the ratio with it;
* unchanged: apply B again; the diff must write nothing, the job rows written are counted in the
  database (their timestamps, and on PostgreSQL their xmin), and on PostgreSQL the WAL written is
  reported twice: `pg_current_wal_lsn()` after minus before, which is cluster-wide (the server's other
  clients count too), and the part of it that is the apply's: the records of its transaction or on
  the scratch database's relations, summed with pg_walinspect.

The summary gives the apply's ratio to both floors and its peak memory, against the targets: at most
2x the plain floor (2.5x required) and under 600 MB at 1M.

On PostgreSQL each apply starts from a `VACUUM ANALYZE`d store (untimed), as autovacuum would leave
it: otherwise the first reads after a bulk change pay its pruning and the planner has no statistics.

    python benchmarks/apply_snapshot.py [--sizes 100000 1000000] [--stores sqlite postgresql]
                                        [--chunk-lines 50000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SOURCE = "company_files"
BOARD = "benchmark-co"
COMPANY = "Benchmark Co"
CHUNK_LINES = 50_000
GENERATOR_VERSION = 1
DEFAULT_PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/"
TARGET_PLAIN_RATIO = 2.0  # apply / plain floor: the target
REQUIRED_PLAIN_RATIO = 2.5  # apply / plain floor: at most this
TARGET_PEAK_MB = 600
TARGET_WAL_BYTES = 1024 * 1024

# ---------------------------------------------------------------------------------------------
# Snapshot generation (seeded, streamed, cached)
# ---------------------------------------------------------------------------------------------

_WORDS = ("team platform customer data build design support product service operations scale "
          "deliver reliable cloud systems engineering manage quality growth across markets improve "
          "workflow partner stakeholders analytics strategy modern secure infrastructure mobile "
          "roadmap experience ownership mentor hiring energy grid wind solar battery charging "
          "logistics fleet games studio players content pipeline testing release automation "
          "monitoring incident review budget forecast compliance regional international remote "
          "hybrid office travel collaborate initiative launch research prototype feedback").split()
_TITLES = ("Software Engineer", "Senior Data Engineer", "Product Manager", "Field Service Technician",
           "HR Business Partner", "Site Reliability Engineer", "UX Designer", "Account Executive",
           "Grid Integration Engineer", "QA Analyst", "Backend Developer", "Game Designer")
_LOCATIONS = ("Hamburg, Germany", "Esbjerg, Denmark", "Remote (EU)", "Berlin, Germany", "Tokyo, Japan",
              "Lisbon, Portugal", "Amsterdam, Netherlands", "Munich, Germany", "Osaka, Japan")
_REQUIREMENTS = ("Degree in computer science", "3+ years of Python", "Fluent English", "German B2",
                 "Experience with PostgreSQL", "GWO Basic Safety Training", "Driving licence",
                 "5+ years HR experience", "Kubernetes in production", "Strong written communication")


def _description(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(4, 7)):
        words = rng.choices(_WORDS, k=rng.randint(7, 13))
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)  # a few hundred characters


def _job(rng: random.Random, number: int) -> dict:
    job_id = f"bm-{number:08d}"
    return {
        "id": job_id,
        "title": rng.choice(_TITLES),
        "company": COMPANY,
        "location": rng.choice(_LOCATIONS),
        "url": f"https://careers.benchmark-co.example/jobs/{job_id}",
        "description": _description(rng),
        "requirements": rng.sample(_REQUIREMENTS, rng.randint(2, 5)),
        "postedDate": (datetime(2026, 1, 1) + timedelta(days=rng.randrange(320))).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "isActive": True,
    }


def expected_counts(size: int) -> dict[str, int]:
    gone, new, changed = size * 5 // 100, size * 5 // 100, size * 3 // 100
    return {"size_a": size, "size_b": size - gone + new, "new": new, "changed": changed,
            "unchanged": size - gone - changed, "reactivated": 0, "expired": gone}


def snapshot_files(size: int, seed: int) -> tuple[Path, Path]:
    """Snapshot A and B of `size` postings, generated once per (size, seed, generator version)."""
    OUT.mkdir(parents=True, exist_ok=True)
    stem = OUT / f"snapshot_{size}_seed{seed}"
    a, b, meta = Path(f"{stem}_a.jsonl"), Path(f"{stem}_b.jsonl"), Path(f"{stem}.meta.json")
    want = {"version": GENERATOR_VERSION, "size": size, "seed": seed, **expected_counts(size)}
    if a.exists() and b.exists() and meta.exists() and json.loads(meta.read_text()) == want:
        return a, b
    started = time.perf_counter()
    counts = expected_counts(size)
    rng = random.Random(seed)
    with open(a, "w", encoding="utf-8") as out:
        for number in range(size):
            out.write(json.dumps(_job(rng, number), ensure_ascii=False) + "\n")
    picked = rng.sample(range(size), counts["expired"] + counts["changed"])
    gone, changed = set(picked[:counts["expired"]]), set(picked[counts["expired"]:])
    # new jobs are spread through the file, so every chunk has inserts as well as updates
    new_at = sorted(rng.sample(range(size), counts["new"]))
    with open(a, encoding="utf-8") as previous, open(b, "w", encoding="utf-8") as out:
        following, next_new = 0, size
        for number, line in enumerate(previous):
            while following < len(new_at) and new_at[following] == number:
                out.write(json.dumps(_job(rng, next_new), ensure_ascii=False) + "\n")
                following, next_new = following + 1, next_new + 1
            if number in gone:
                continue
            if number in changed:
                job = json.loads(line)
                job["description"] = _description(rng)
                line = json.dumps(job, ensure_ascii=False) + "\n"
            out.write(line)
    meta.write_text(json.dumps(want))
    print(f"# generated {a.name} and {b.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return a, b


def read_chunks(path: Path, lines: int = CHUNK_LINES, *, binary: bool = False):
    """The file's lines, `lines` at a time (the generator keeps no reference to a chunk it gave out);
    `binary`: as bytes."""
    with open(path, "rb") if binary else open(path, encoding="utf-8") as handle:
        pending = [list(islice(handle, lines))]
        while pending[0]:
            yield pending.pop()
            pending.append(list(islice(handle, lines)))


# ---------------------------------------------------------------------------------------------
# Phases, each run in its own child process
# ---------------------------------------------------------------------------------------------

def phase_floor(params: dict) -> dict:
    """Reading and hashing the snapshot, and nothing else."""
    from jobsync_pipeline.core.normalize import content_hash

    started = time.perf_counter()
    rows, checksum = 0, 0
    for lines in read_chunks(Path(params["file"]), params["chunk_lines"]):
        # one job at a time: faster than decoding a chunk and hashing its columns (content_hashes),
        # which holds the chunk's jobs while it works
        for line in lines:
            job = json.loads(line)
            checksum ^= content_hash((job["title"], job["company"], job["location"], job["url"],
                                      job["description"], json.dumps(job["requirements"], ensure_ascii=False),
                                      job["postedDate"]))
        rows += len(lines)
    return {"seconds": time.perf_counter() - started, "rows": rows, "checksum": checksum}


def phase_plain_floor(params: dict) -> dict:
    """The limit for a Python reader: each line json-decoded and an md5 over its values joined."""
    import hashlib

    md5, loads = hashlib.md5, json.loads
    started = time.perf_counter()
    rows, checksum = 0, 0
    for lines in read_chunks(Path(params["file"]), params["chunk_lines"]):
        for line in lines:
            digest = md5("\x1f".join(str(v) for v in loads(line).values()).encode("utf-8", "surrogatepass")).digest()
            checksum ^= int.from_bytes(digest[:8], "big")
        rows += len(lines)
    return {"seconds": time.perf_counter() - started, "rows": rows, "checksum": checksum}


def _apply(params: dict, store, sync_id: int) -> tuple:
    """Read, normalize and apply one snapshot file; the seconds spent producing chunks are counted.

    The lines are read as bytes, as a payload arrives, and handed to the normalizer as JSON texts with the
    board's known records (those of the state the apply reads, as a sync of a company file's `job_diff`
    parses): it recognises the records the store's jobs were written from by their digests, and decodes
    and validates the others in one step (`JobNormalizer.frame_texts`)."""
    from jobsync_pipeline.sources.company_files import JobNormalizer
    from jobsync_pipeline.store.apply import Recognised

    normalizer = JobNormalizer(COMPANY)
    produced = {"seconds": 0.0, "rows": 0}

    def chunks(known):
        position = 0
        for lines in read_chunks(Path(params["file"]), params["chunk_lines"], binary=True):
            began = time.perf_counter()
            count = len(lines)
            frame = normalizer.frame_texts(lines, start=position, known=known)
            del lines  # a chunk's text and frame are not kept beyond their use
            produced["seconds"] += time.perf_counter() - began
            produced["rows"] += len(frame)
            position += count
            yield frame
            del frame

    started = time.perf_counter()
    snapshot_at = datetime.now(timezone.utc)
    result = store.apply_snapshot(SOURCE, BOARD, lambda known: Recognised(chunks(known), snapshot_at),
                                  sync_id=sync_id)
    seconds = time.perf_counter() - started
    assert not normalizer.bad_records and not normalizer.duplicates, "the generated snapshot must be clean"
    return result, seconds, produced


def _wal_position(url: str) -> dict | None:
    """Where the WAL is, and this database's oid, so the WAL the apply writes can be told from the
    cluster's; a temporary replication slot (on a connection of its own, released when it closes)
    keeps checkpoints from recycling the segments before they are read."""
    if not url.startswith("postgresql"):
        return None
    import sqlalchemy as sa

    from jobsync_pipeline.store.engine import engine_for

    with engine_for(url).begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
    holder = engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT")
    holder.execute(sa.text("SELECT pg_create_physical_replication_slot(:name, true, true)"),
                   {"name": f"jobsync_bench_{secrets.token_hex(4)}"})
    return {"holder": holder, "lsn": holder.scalar(sa.text("SELECT pg_current_wal_lsn()::text")),
            "oid": holder.scalar(sa.text("SELECT oid FROM pg_database WHERE datname = current_database()"))}


def _wal_written(before: dict | None, sync_id: int) -> tuple[int | None, int | None]:
    """WAL bytes since `before`: the whole cluster's (`pg_current_wal_lsn()` after minus before, so other
    clients of the server count too), and the records of the apply's transaction or on this database's
    relations (pg_walinspect)."""
    if before is None:
        return None, None
    import sqlalchemy as sa

    conn = before["holder"]
    try:
        cluster = conn.scalar(sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn))"),
                              {"lsn": before["lsn"]})
        own = conn.scalar(sa.text(
            "SELECT coalesce(sum(record_length), 0) FROM pg_get_wal_records_info("
            "  CAST(:lsn AS pg_lsn), pg_current_wal_flush_lsn())"
            " WHERE xid = (SELECT xmin FROM syncs WHERE id = :sync_id)"
            "    OR block_ref ~ ('rel [0-9]+/' || CAST(:oid AS text) || '/')"),
            {"lsn": before["lsn"], "sync_id": sync_id, "oid": before["oid"]})
    finally:
        conn.close()  # releases the temporary slot
    return int(cluster), int(own)


def phase_apply(params: dict) -> dict:
    """Apply one snapshot file to the store and check its counts against the expected ones."""
    import sqlalchemy as sa

    from jobsync_pipeline.store.engine import engine_for, upgrade, wait_for_checkpoints
    from jobsync_pipeline.store.repo import Store
    from jobsync_pipeline.store.tables import job_events, jobs

    url, expect = params["url"], params["expect"]
    upgrade(url)  # a fresh store, as `jobsync db upgrade` makes it
    store = Store(url)
    store.ensure_boards(SOURCE, [BOARD])
    if params.get("vacuum") and url.startswith("postgresql"):
        # the store has held its jobs for a while: no pending hint bits or pruning from the load
        with engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    sync_id = store.start_sync(SOURCE, BOARD, run_id="benchmark")
    wal_before = _wal_position(url) if params.get("count_rows") else None
    wall_before = datetime.now(timezone.utc) - timedelta(seconds=1)
    result, seconds, produced = _apply(params, store, sync_id)
    waited = time.perf_counter()
    wait_for_checkpoints()  # SQLite: the checkpoint a large apply's commit left to a thread
    checkpoint_seconds = time.perf_counter() - waited
    counts = {kind: result.counts()[kind] for kind in expect}  # a company file has no already_expired
    assert counts == expect, f"counts {counts} != expected {expect}"
    out = {"seconds": seconds, "checkpoint_seconds": checkpoint_seconds, "normalize_seconds": produced["seconds"],
           "rows": produced["rows"],
           "counts": counts, "writes": result.writes}
    if params.get("count_rows"):
        out["wal_cluster_bytes"], out["wal_bytes"] = _wal_written(wal_before, sync_id)
    if params.get("count_rows"):
        with engine_for(url).connect() as conn:
            written = [jobs.c.updated_at >= wall_before, jobs.c.last_seen_at >= wall_before,
                       jobs.c.first_seen_at >= wall_before, jobs.c.expired_at >= wall_before]
            if url.startswith("postgresql"):  # or whose row version the apply's transaction wrote
                written.append(sa.literal_column("jobs.xmin", sa.Text) == sa.text(
                    f"(SELECT xmin FROM syncs WHERE id = {int(sync_id)})"))
            out["rows_written"] = conn.scalar(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.source == SOURCE, jobs.c.board == BOARD, sa.or_(*written)))
            out["events_written"] = conn.scalar(sa.select(sa.func.count()).select_from(job_events)
                                                .where(job_events.c.sync_id == sync_id))
    return out


PHASES = {"floor": phase_floor, "plain_floor": phase_plain_floor, "apply": phase_apply}


def run_child(phase: str, params: dict) -> dict:
    """Run one phase in a fresh interpreter; its own peak RSS comes from wait4."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", phase, json.dumps(params)],
                               stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"phase {phase} failed ({process.returncode}) with {params}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


# ---------------------------------------------------------------------------------------------
# Stores
# ---------------------------------------------------------------------------------------------

class SqliteStore:
    name = "sqlite"

    def __enter__(self) -> str:
        self.folder = tempfile.mkdtemp(prefix="jobsync_bench_")
        return f"sqlite:///{self.folder}/store.db"

    def save(self) -> None:
        """Keep the store as it is now, for `restore` (between repeats of the apply)."""
        self._copy(f"{self.folder}/store.db", f"{self.folder}/saved.db")

    def restore(self) -> None:
        self._copy(f"{self.folder}/saved.db", f"{self.folder}/store.db")

    @staticmethod
    def _copy(source: str, target: str) -> None:
        import sqlite3

        for suffix in ("", "-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)
        with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
            origin.backup(copy)  # consistent with its WAL, unlike a file copy
        origin.close()
        copy.close()

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class PostgresStore:
    name = "postgresql"

    def __init__(self, server: str):
        self.server = server.rstrip("/") + "/"

    def _admin(self, statement: str) -> None:
        import psycopg2

        connection = psycopg2.connect(self.server.replace("+psycopg2", "") + "postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def __enter__(self) -> str:
        self.database = f"jobsync_bench_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{self.database}"')
        return self.server + self.database

    def save(self) -> None:
        """Keep the store as it is now, for `restore` (a template database: a file-level copy)."""
        self._admin(f'CREATE DATABASE "{self.database}_saved" TEMPLATE "{self.database}"')

    def restore(self) -> None:
        self._admin(f'DROP DATABASE "{self.database}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.database}" TEMPLATE "{self.database}_saved"')

    def __exit__(self, *exc) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self._admin(f'DROP DATABASE IF EXISTS "{self.database}_saved" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def bench(size: int, store, seed: int, chunk_lines: int, repeat: int = 1) -> dict:
    a, b = snapshot_files(size, seed)
    counts = expected_counts(size)
    apply_expect = {k: counts[k] for k in ("new", "changed", "unchanged", "reactivated", "expired")}
    load_expect = {"new": size, "changed": 0, "unchanged": 0, "reactivated": 0, "expired": 0}
    same_expect = {"new": 0, "changed": 0, "unchanged": counts["size_b"], "reactivated": 0, "expired": 0}
    common = {"chunk_lines": chunk_lines}
    with store as url:
        load = run_child("apply", {**common, "url": url, "file": str(a), "expect": load_expect})
        if repeat > 1:
            store.save()
        floors, applies = [run_child("floor", {**common, "file": str(b)})], []
        plains = [run_child("plain_floor", {**common, "file": str(b)})]
        for number in range(repeat):
            if number:
                store.restore()  # each repeat applies B to the store as A's load left it
            applies.append(run_child("apply", {**common, "url": url, "file": str(b), "expect": apply_expect,
                                               "vacuum": True}))
            floors.append(run_child("floor", {**common, "file": str(b)}))
            plains.append(run_child("plain_floor", {**common, "file": str(b)}))
        same = run_child("apply", {**common, "url": url, "file": str(b), "expect": same_expect, "vacuum": True,
                                   "count_rows": True})
    assert all(f["rows"] == counts["size_b"] and f["checksum"] == floors[0]["checksum"] for f in floors), floors
    # the machine is shared: the fastest floor (one before the first apply, one after each) and the
    # fastest apply count, as timeit takes the best of its repeats
    assert all(p["rows"] == counts["size_b"] and p["checksum"] == plains[0]["checksum"] for p in plains), plains
    floor = min(floors, key=lambda f: f["seconds"])
    floor["peak_mb"] = max(f["peak_mb"] for f in floors)
    plain = min(plains, key=lambda f: f["seconds"])
    apply = min(applies, key=lambda f: f["seconds"])
    apply["peak_mb"] = max(f["peak_mb"] for f in applies)
    apply["all_seconds"] = [f["seconds"] for f in applies]
    assert apply["rows"] == counts["size_b"] and apply["writes"] == size * 13 // 100, apply
    assert same["writes"] == 0 and same["rows_written"] == 0 and same["events_written"] == 0, same
    return {"store": store.name, "size": size, "load": load, "floor": floor, "plain": plain, "apply": apply,
            "same": same}


def report(rows: list[dict]) -> None:
    header = ("store", "size", "floor s", "plain floor s", "apply s: best (all)", "apply / floor",
              "apply / plain", "checkpoint after s", "with it / plain", "(normalize s", "store s)", "peak MB floor",
              "peak MB apply", "peak MB unchanged",
              "unchanged s", "unchanged job rows written", "unchanged WAL bytes", "(cluster-wide)")
    table = [header]
    for r in rows:
        floor, plain, apply, same = r["floor"], r["plain"], r["apply"], r["same"]
        table.append((r["store"], f"{r['size']:,}", f"{floor['seconds']:.2f}", f"{plain['seconds']:.2f}",
                      f"{apply['seconds']:.2f} ({', '.join(f'{t:.2f}' for t in apply['all_seconds'])})",
                      f"{apply['seconds'] / floor['seconds']:.2f}x", f"{apply['seconds'] / plain['seconds']:.2f}x",
                      f"{apply['checkpoint_seconds']:.2f}",
                      f"{(apply['seconds'] + apply['checkpoint_seconds']) / plain['seconds']:.2f}x",
                      f"{apply['normalize_seconds']:.2f}", f"{apply['seconds'] - apply['normalize_seconds']:.2f}",
                      f"{floor['peak_mb']:.0f}", f"{apply['peak_mb']:.0f}", f"{same['peak_mb']:.0f}",
                      f"{same['seconds']:.2f}", str(same["rows_written"]),
                      "n/a" if same["wal_bytes"] is None else f"{same['wal_bytes']:,}",
                      "n/a" if same["wal_cluster_bytes"] is None else f"{same['wal_cluster_bytes']:,}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print()
    for number, row in enumerate(table):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    print()
    print(f"targets: apply <= {TARGET_PLAIN_RATIO:g}x the plain floor (required: at most {REQUIRED_PLAIN_RATIO:g}x); "
          f"peak memory < {TARGET_PEAK_MB} MB at 1,000,000; an unchanged snapshot writes 0 job rows, and under "
          f"{TARGET_WAL_BYTES:,} WAL bytes on PostgreSQL")
    missed = []
    for r in rows:
        where = f"{r['store']} {r['size']:,}"
        ratio = r["apply"]["seconds"] / r["plain"]["seconds"]
        if ratio > REQUIRED_PLAIN_RATIO:
            missed.append(f"{where}: apply {ratio:.2f}x the plain floor (required: at most {REQUIRED_PLAIN_RATIO:g}x)")
        elif ratio > TARGET_PLAIN_RATIO:
            missed.append(f"{where}: apply {ratio:.2f}x the plain floor (target {TARGET_PLAIN_RATIO:g}x; "
                          f"within the required {REQUIRED_PLAIN_RATIO:g}x)")
        peak = max(r["apply"]["peak_mb"], r["same"]["peak_mb"])
        if r["size"] >= 1_000_000 and peak >= TARGET_PEAK_MB:
            missed.append(f"{where}: peak memory {peak:.0f} MB")
        if r["same"]["rows_written"]:
            missed.append(f"{where}: unchanged snapshot wrote {r['same']['rows_written']} job rows")
        if r["same"]["wal_bytes"] is not None and r["same"]["wal_bytes"] >= TARGET_WAL_BYTES:
            missed.append(f"{where}: unchanged snapshot wrote {r['same']['wal_bytes']:,} WAL bytes")
    print("missed: " + ("; ".join(missed) if missed else "none"))
    print("floor s: read B, json-decode and the product's content hash; plain floor s: read B, json.loads and an md5 "
          "over each line's values joined (the limit for a Python reader); both the fastest of one run before the "
          "first apply and one after each. apply s: reading B, decoding and normalizing it with JobNormalizer and "
          "Store.apply_snapshot (one transaction) until it returns, the fastest (all in brackets), split into "
          "normalize s (reading, decoding, normalizing) and store s (the rest); checkpoint after s: SQLite's "
          "checkpoint of that apply's WAL, which its commit leaves to a thread (PostgreSQL's checkpointer works in "
          "the background too, uncounted), and the ratio with it counted; counts asserted exact. unchanged: B "
          "applied again; job rows written counted in the database; WAL bytes: records of its transaction or on the "
          "store's relations (pg_walinspect), beside the cluster-wide pg_current_wal_lsn() difference, which counts "
          "the server's other clients too. Not shown, the untimed load of A: "
          + ", ".join(f"{r['store']} {r['size']:,} {r['load']['seconds']:.1f} s" for r in rows) + ".")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--seed", type=int, default=20261118)
    parser.add_argument("--chunk-lines", type=int, default=CHUNK_LINES,
                        help="lines read, normalized and applied at a time (default %(default)s)")
    parser.add_argument("--postgres", default=os.environ.get("JOBSYNC_BENCH_POSTGRES", DEFAULT_PG),
                        help="server URL (default %(default)s); a scratch database is created and dropped")
    parser.add_argument("--repeat", type=int, default=3,
                        help="applies of B per store and size, each to a fresh copy of the loaded store; the "
                             "fastest counts, as does the fastest floor (default %(default)s)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        phase, params = args.child
        print(json.dumps(PHASES[phase](json.loads(params))))
        return
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cpus, chunks of {args.chunk_lines:,} lines, "
          f"seed {args.seed}", flush=True)
    rows = []
    for size in args.sizes:
        for name in args.stores:
            store = SqliteStore() if name == "sqlite" else PostgresStore(args.postgres)
            started = time.perf_counter()
            row = bench(size, store, args.seed, args.chunk_lines, args.repeat)
            rows.append(row)
            print(f"# {name} {size:,} done in {time.perf_counter() - started:.0f} s: floor "
                  f"{row['floor']['seconds']:.2f} s, plain floor {row['plain']['seconds']:.2f} s, "
                  f"apply {row['apply']['seconds']:.2f} s "
                  f"(normalize {row['apply']['normalize_seconds']:.2f} s; all applies "
                  f"{', '.join(f'{t:.2f}' for t in row['apply']['all_seconds'])} s), peak MB "
                  f"{row['apply']['peak_mb']:.0f}/{row['same']['peak_mb']:.0f}, unchanged: "
                  f"{row['same']['rows_written']} rows, WAL {row['same']['wal_bytes']} "
                  f"(cluster {row['same']['wal_cluster_bytes']})", flush=True)
    report(rows)


if __name__ == "__main__":
    main()
