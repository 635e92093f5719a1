"""Per-host pacing shared by every process (sources/pacing.py, store/pacing.py): the slot arithmetic,
reservations by threads and processes on SQLite and PostgreSQL, and a lane run, a discovery run and
`jobsync boards add` at the same time against one local host."""
from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from jobsync_pipeline.sources.pacing import HostSlots, InProcessPacer, Slot, hold_slots, reserve_slot
from jobsync_pipeline.store.engine import engine_for
from jobsync_pipeline.store.pacing import SIDE_FILE_SUFFIX, StorePacer, pacing_url, shared_pacer
from jobsync_pipeline.store.tables import boards, host_pacing
from jobsync_pipeline_tests.http_server import LocalServer, Reply, json_reply
from jobsync_pipeline_tests.pacing_runs import T, reserve_in_process, reserve_many, unique_host

BIN = Path(sys.executable).parent


# --- the arithmetic --------------------------------------------------------------------------------

def test_the_first_slot_is_now_and_each_next_one_an_interval_later():
    state = HostSlots()
    slots = []
    for _ in range(3):
        slot, state = reserve_slot(state, 100.0, 1.0)
        slots.append(slot)
    assert slots == [100.0, 101.0, 102.0]
    assert state == HostSlots(last_slot_at=102.0, next_slot_at=103.0, held_until=-math.inf)


def test_a_host_idle_for_longer_than_the_interval_is_free_at_once():
    _, state = reserve_slot(HostSlots(), 100.0, 1.0)
    assert reserve_slot(state, 105.0, 1.0)[0] == 105.0


def test_a_delay_reserves_a_later_slot_and_the_host_rests_until_then():
    slot, state = reserve_slot(HostSlots(), 100.0, 1.0, delay=4.0)
    assert slot == 104.0
    assert reserve_slot(state, 100.5, 1.0)[0] == 105.0  # the next request queues behind the backoff


def test_a_hold_pushes_every_slot_and_never_shortens():
    state = hold_slots(HostSlots(), 110.0)
    assert hold_slots(state, 105.0).held_until == 110.0
    slot, state = reserve_slot(state, 100.0, 1.0)
    assert slot == 110.0 and reserve_slot(state, 100.0, 1.0)[0] == 111.0


def test_mixed_intervals_keep_the_longer_spacing_on_both_sides():
    _, state = reserve_slot(HostSlots(), 100.0, 2.0)  # a feed client, 2 s apart
    slot, state = reserve_slot(state, 100.0, 1.0)  # an ATS client on the same host
    assert slot == 102.0  # the feed's 2 s after its own request
    assert reserve_slot(state, 100.0, 2.0)[0] == 104.0  # and 2 s before its next one


def test_the_in_process_pacer_hands_out_slots_in_its_own_clock():
    now = [50.0]
    pacer = InProcessPacer(lambda: now[0])
    slots = [pacer.reserve("h", 0.5) for _ in range(3)]
    assert slots == [Slot(50.0, 0.0), Slot(50.5, 0.5), Slot(51.0, 1.0)]
    pacer.hold_off("h", 3.0)  # after those reservations: it voids the ones it covers
    assert [pacer.voided("h", s) for s in slots] == [True, True, True]
    assert pacer.reserve("h", 0.5) == Slot(53.0, 3.0)
    assert not pacer.voided("h", Slot(53.0, 3.0)) and not pacer.voided("other", slots[0])
    now[0] = 60.0
    assert pacer.reserve("h", 0.5) == Slot(60.0, 0.0)


# --- where the slots live --------------------------------------------------------------------------

def test_a_sqlite_store_paces_in_a_side_file_made_on_first_use(sqlite_url):
    side = Path(sa.make_url(sqlite_url).database + SIDE_FILE_SUFFIX)
    assert pacing_url(sqlite_url) == f"sqlite:///{side}"
    pacer = StorePacer(sqlite_url)
    assert not side.exists()  # nothing made at construction
    assert pacer.reserve(unique_host(), 1.0).wait == 0.0
    assert side.exists()
    assert "host_pacing" not in sa.inspect(engine_for(sqlite_url)).get_table_names()  # never in the store


def test_a_postgres_store_paces_in_its_own_table(postgres_url):
    assert pacing_url(postgres_url) == postgres_url
    host = unique_host()
    StorePacer(postgres_url).reserve(host, 1.0)
    with engine_for(postgres_url).connect() as conn:
        assert conn.scalar(sa.select(host_pacing.c.host)) == host


def test_the_host_pacing_migration_makes_the_table_on_postgres_only_and_goes_back(blank_store_url):
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from jobsync_pipeline.store.engine import MIGRATIONS, upgrade

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    (migration,) = [r for r in ScriptDirectory.from_config(config).walk_revisions()
                    if r.path.endswith("_host_pacing.py")]
    engine = engine_for(blank_store_url)
    upgrade(blank_store_url, migration.down_revision)
    assert not sa.inspect(engine).has_table("host_pacing")
    upgrade(blank_store_url, migration.revision)
    assert sa.inspect(engine).has_table("host_pacing") == (engine.dialect.name == "postgresql")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, migration.down_revision)
    assert not sa.inspect(engine).has_table("host_pacing")


def test_an_in_memory_store_has_nothing_to_share():
    assert pacing_url("sqlite://") is None and pacing_url("sqlite:///:memory:") is None
    assert shared_pacer("sqlite://") is None


def test_reservations_hold_offs_and_a_stepped_back_clock(store_url):
    now = [T]
    pacer = StorePacer(store_url, clock=lambda: now[0])
    host = unique_host()
    slots = [pacer.reserve(host, 1.0) for _ in range(3)]
    assert slots == [Slot(T, 0.0), Slot(T + 1, 1.0), Slot(T + 2, 2.0)]
    assert pacer.slots(host) == HostSlots(last_slot_at=T + 2, next_slot_at=T + 3, held_until=0.0)
    other_process = StorePacer(store_url, clock=lambda: now[0])
    other_process.hold_off(host, 30.0)  # a 429 there
    assert all(pacer.voided(host, s) for s in slots)  # the sleeping requests here reserve again
    assert pacer.reserve(host, 1.0) == Slot(T + 30, 30.0)
    assert not other_process.voided(host, Slot(T + 30, 30.0))
    now[0] = T - 86_400  # the wall clock stepped back a day: the stored instants are forgotten, not waited for
    assert not pacer.voided(host, slots[0]) and pacer.reserve(host, 1.0) == Slot(T - 86_400, 0.0)


# --- threads and processes -------------------------------------------------------------------------

def assert_one_queue(waits: list[list[float]]) -> None:
    """Every slot handed out once, an interval apart, and the reservers took turns."""
    every = sorted(w for ws in waits for w in ws)
    assert every == [float(k) for k in range(len(every))], every
    owner = {w: i for i, ws in enumerate(waits) for w in ws}
    switches = sum(owner[a] != owner[b] for a, b in zip(every, every[1:]))
    assert switches >= 2, "the reservers never overlapped"


def test_two_threads_share_one_queue(store_url):
    host, n = unique_host(), 60
    barrier = threading.Barrier(2)
    waits: list[list[float]] = [[], []]

    def work(i: int) -> None:
        waits[i] = reserve_many(store_url, host, n, barrier)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert_one_queue(waits)


def test_two_processes_share_one_queue(store_url):
    host, n = unique_host(), 60
    context = multiprocessing.get_context("spawn")  # a clean interpreter, as a second `jobsync` would be
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=reserve_in_process, args=(store_url, host, n, barrier, results))
                 for _ in range(2)]
    for p in processes:
        p.start()
    waits = dict(results.get(timeout=120) for _ in processes)
    for p in processes:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len(waits) == 2
    assert_one_queue(list(waits.values()))


# --- pacing and the apply never wait for each other ------------------------------------------------

def hold_store_write(store_url: str, release: threading.Event, holding: threading.Event) -> None:
    """An apply's long write transaction on the store (on SQLite: BEGIN IMMEDIATE, the file's write lock)."""
    with engine_for(store_url).begin() as conn:
        conn.execute(boards.insert().values(source="greenhouse", board="apply-in-progress",
                                            added_at=sa.func.now()))
        holding.set()
        release.wait(30)


def test_a_long_apply_does_not_delay_a_reservation(store_url):
    pacer = StorePacer(store_url)
    pacer.reserve(unique_host(), 1.0)  # the side file / schema check made before the apply starts
    release, holding = threading.Event(), threading.Event()
    apply = threading.Thread(target=hold_store_write, args=(store_url, release, holding))
    apply.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        host = unique_host()
        slot = pacer.reserve(host, 1.0)
        pacer.hold_off(host, 1.0)
        assert slot.wait == 0.0 and pacer.voided(host, slot)
        assert time.monotonic() - started < 0.5  # the apply still holds its transaction
        assert apply.is_alive()
    finally:
        release.set()
        apply.join(10)


def test_a_fetch_waiting_for_its_slot_holds_no_transaction(store_url):
    """While a request sleeps until its slot, the store and the pacing table are free for everyone."""
    from jobsync_pipeline.sources.http import HttpPolicy, PoliteClient

    with LocalServer({"/a": Reply(body=b"{}")}) as server:
        pacer = StorePacer(store_url)
        host = server.base_url.removeprefix("http://")
        pacer.hold_off(host, 2.0)  # another process was told to wait 2 s
        with PoliteClient(HttpPolicy(requests_per_second=1), pacer=pacer) as client:
            fetching = threading.Thread(target=client.get, args=(server.url("/a"),))
            fetching.start()
            time.sleep(0.3)  # the client is asleep now, its slot reserved
            started = time.monotonic()
            with engine_for(store_url).begin() as conn:  # an apply's write transaction
                conn.execute(boards.insert().values(source="greenhouse", board="b", added_at=sa.func.now()))
            assert StorePacer(store_url).reserve(unique_host(), 1.0).wait == 0.0  # another host's slot
            assert time.monotonic() - started < 0.5
            assert fetching.is_alive() and server.count() == 0
            fetching.join(10)
        assert server.count(200) == 1


# --- the test: a lane run, a discovery run and `boards add` at once against one host --------

LANE_BOARDS = ["lane-a", "lane-b", "lane-c"]
CLI_BOARDS = ["cli-a", "cli-b", "cli-c", "cli-d", "cli-e"]
CANDIDATES = {"Zephyrworks": "zephyrworks", "Quillfeather": "quillfeather"}  # name → its one token
MIN_GAP = 0.95


def board_path(board: str) -> str:
    return f"/v1/boards/{board}/jobs"


def board_jobs(board: str) -> dict:
    """A small Greenhouse jobs document."""
    return {"jobs": [{"id": i, "title": f"{board} role {i}", "location": {"name": "Berlin"},
                      "absolute_url": f"https://job-boards.greenhouse.io/{board}/jobs/{i}",
                      "content": "&lt;p&gt;Build things.&lt;/p&gt;", "company_name": board.title(),
                      "updated_at": "2026-11-19T09:14:02-05:00"} for i in range(1, 4)],
            "meta": {"total": 3}}


def test_lanes_discovery_and_the_cli_share_the_hosts_pace(store_url, tmp_path):
    routes = {board_path(b): json_reply(board_jobs(b)) for b in [*LANE_BOARDS, *CLI_BOARDS, "zephyrworks"]}
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("\n".join(CANDIDATES) + "\n")
    with LocalServer(routes) as server:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
               "JOBSYNC_DATABASE_URL": store_url, "JOBSYNC_BUCKET_URL": str(tmp_path / "bucket"),
               "JOBSYNC_GREENHOUSE_BASE_URL": server.base_url, "JOBSYNC_LEVER_BASE_URL": server.base_url}
        commands = {
            "lane": [sys.executable, "-m", "jobsync_pipeline_tests.pacing_runs", "lane", *LANE_BOARDS],
            "discovery": [sys.executable, "-m", "jobsync_pipeline_tests.pacing_runs", "discovery", str(candidates)],
            "cli": [str(BIN / "jobsync"), "boards", "add", "greenhouse", *CLI_BOARDS, "--json"],
        }
        go = tmp_path / "go"
        processes = {}
        for name, command in commands.items():
            home = tmp_path / f"dagster_home_{name}"
            home.mkdir()
            processes[name] = subprocess.Popen(
                command, env={**env, "DAGSTER_HOME": str(home), "PACING_READY_FILE": str(tmp_path / f"{name}.ready"),
                              "PACING_GO_FILE": str(go)},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The two runs wait until both are ready and the CLI (the quickest to start) has begun asking,
        # so all three fetch at the same time.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                server.count() > 0 and all((tmp_path / f"{n}.ready").exists() for n in ("lane", "discovery"))):
            time.sleep(0.02)
        go.touch()
        outputs = {name: p.communicate(timeout=240) for name, p in processes.items()}
    for name, p in processes.items():
        assert p.returncode == 0, f"{name}: {outputs[name][1][-3000:]}"

    hits = sorted(server.hits, key=lambda h: h.at)
    by = {"lane": [board_path(b) for b in LANE_BOARDS], "cli": [board_path(b) for b in CLI_BOARDS]}
    origin = {path: name for name, paths in by.items() for path in paths}

    def who(path: str) -> str:
        return origin.get(path.split("?")[0], "discovery")

    assert sorted(who(h.path) for h in hits) == sorted(
        ["lane"] * len(LANE_BOARDS) + ["cli"] * len(CLI_BOARDS) + ["discovery"] * 2 * len(CANDIDATES)), \
        [h.path for h in hits]  # one request each, greenhouse and lever for each candidate: no retries
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:])]
    print(f"\n{len(hits)} requests over {hits[-1].at - hits[0].at:.2f} s; gaps min {min(gaps):.3f} s, "
          f"max {max(gaps):.3f} s; order {' '.join(who(h.path) for h in hits)}")
    assert min(gaps) >= MIN_GAP, [round(g, 3) for g in gaps]
    # The three processes really asked at the same time: each one's requests overlap the others'.
    spans = {name: (min(h.at for h in hits if who(h.path) == name), max(h.at for h in hits if who(h.path) == name))
             for name in ("lane", "discovery", "cli")}
    for a in spans:
        for b in spans:
            assert spans[a][0] < spans[b][1], spans
