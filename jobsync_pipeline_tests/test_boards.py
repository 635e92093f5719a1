"""The board registry (jobsync_pipeline/store/boards.py): lifecycle and candidates, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from jobsync_pipeline.store.boards import BoardRegistry
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import boards, job_events, jobs, potential_companies, syncs

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
LONG_AGO = datetime(2026, 1, 1, tzinfo=timezone.utc)


def registry_for(url: str) -> BoardRegistry:
    return BoardRegistry(Store(url).engine)  # Store migrates the schema on first use


def seed_jobs(registry: BoardRegistry, source: str, board: str, ids: list[str], *, expired: set[str] = frozenset(),
              company: str = "Acme") -> None:
    with registry.engine.begin() as conn:
        conn.execute(jobs.insert(), [{
            "source": source, "board": board, "external_id": i, "title": f"Job {i}", "company": company,
            "location": "Remote", "url": f"https://example.test/{i}", "description": "", "requirements": "[]",
            "content_hash": 1, "first_seen_at": T0, "last_seen_at": T0, "updated_at": T0,
            "expired_at": T0 if i in expired else None, "expired_reason": "absent" if i in expired else None,
        } for i in ids])


def select(registry: BoardRegistry, query) -> list[tuple]:
    with registry.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def backdate(registry: BoardRegistry, source: str, board: str, **values) -> None:
    with registry.engine.begin() as conn:
        conn.execute(boards.update().where(boards.c.source == source, boards.c.board == board).values(**values))


def test_three_not_found_answers_retire_the_board_and_expire_its_jobs_once(store_url):
    registry = registry_for(store_url)
    registry.add("greenhouse", ["acme", "globex"], origin="cli")
    seed_jobs(registry, "greenhouse", "acme", ["a1", "a2", "a3"], expired={"a3"})
    seed_jobs(registry, "greenhouse", "globex", ["g1"])

    answers = [registry.not_found("greenhouse", "acme", "GET …/acme answered 404", retire_after=3, run_id=f"r{n}")
               for n in range(3)]

    assert answers == [("failing", 0), ("failing", 0), ("retired", 2)]
    assert registry.syncable("greenhouse") == ["globex"]
    assert sorted(select(registry, sa.select(jobs.c.external_id, jobs.c.expired_reason).where(
        jobs.c.board == "acme"))) == [("a1", "board_retired"), ("a2", "board_retired"), ("a3", "absent")]
    assert select(registry, sa.select(jobs.c.expired_at).where(jobs.c.board == "globex")) == [(None,)]
    (retired,) = select(registry, sa.select(syncs.c.id, syncs.c.status, syncs.c.expired, syncs.c.run_id,
                                            syncs.c.error).where(syncs.c.board == "acme"))
    assert retired[1:4] == ("retired", 2, "r2")
    assert "retired after 3 consecutive not-found answers" in retired[4] and "404" in retired[4]
    events = select(registry, sa.select(jobs.c.external_id, job_events.c.kind, job_events.c.sync_id)
                    .join(jobs, jobs.c.id == job_events.c.job_id))
    assert sorted(events) == [("a1", "expired", retired[0]), ("a2", "expired", retired[0])]

    # a fourth 404 (a retired partition run by hand) neither writes another syncs row nor touches a job
    assert registry.not_found("greenhouse", "acme", "404 again", retire_after=3) == ("retired", 0)
    assert select(registry, sa.select(sa.func.count()).select_from(syncs)) == [(1,)]
    assert select(registry, sa.select(sa.func.count()).select_from(job_events)) == [(2,)]


def test_one_bad_answer_never_retires_and_a_good_one_makes_the_board_active(store_url):
    registry = registry_for(store_url)
    registry.add("lever", ["fjordline"], origin="discovery")
    assert registry.not_found("lever", "fjordline", "404", retire_after=3) == ("failing", 0)
    assert registry.syncable("lever") == ["fjordline"]  # failing boards are still synced
    registry.answered("lever", "fjordline")
    assert registry.not_found("lever", "fjordline", "404", retire_after=3) == ("failing", 0)  # count restarted
    registry.answered("lever", "fjordline")
    assert select(registry, sa.select(boards.c.status, boards.c.consecutive_not_found, boards.c.status_reason)) == \
        [("active", 0, None)]


def test_describe_shows_each_board_with_its_last_sync(store_url):
    store = Store(store_url)
    registry = BoardRegistry(store.engine)
    registry.add("greenhouse", ["acme", "globex"], origin="cli")
    store.record_sync("greenhouse", "acme", "failed", run_id="r1", error="first")
    store.record_sync("greenhouse", "acme", "success", run_id="r2", counts={"found": 4, "new": 4})
    registry.remove("greenhouse", "globex", "closed by an operator")

    described = {b.board: b for b in registry.describe("greenhouse")}

    acme, globex = described["acme"], described["globex"]
    assert (acme.status, acme.origin, acme.last_sync_status, acme.last_sync_error) == ("active", "cli", "success", None)
    assert acme.last_sync_counts["found"] == 4 and acme.last_sync_counts["new"] == 4
    assert acme.added_at.tzinfo is not None
    assert (globex.status, globex.status_reason, globex.last_sync_status) == \
        ("retired", "closed by an operator", "retired")
    assert registry.describe("lever") == []
    assert [b.board for b in registry.describe("greenhouse", retired=False)] == ["acme"]
    with store.engine.connect() as conn:  # an operator's removal says so on the expired jobs
        assert conn.execute(sa.text("select status, expired from syncs where board = 'globex'")).all() == \
            [("retired", 0)]


def test_retired_boards_come_due_in_turn_and_come_back_when_added(store_url):
    registry = registry_for(store_url)
    registry.add("greenhouse", ["old", "older", "recent"], origin="cli")
    for board in ("old", "older", "recent"):
        registry.remove("greenhouse", board, "gone")
    backdate(registry, "greenhouse", "older", status_changed_at=LONG_AGO)
    backdate(registry, "greenhouse", "old", status_changed_at=LONG_AGO + timedelta(days=1))

    assert registry.retired_due("greenhouse", timedelta(days=30), limit=1) == ["older"]
    registry.attempted("greenhouse", ["older"])  # re-probed just now, still gone
    assert registry.retired_due("greenhouse", timedelta(days=30), limit=1) == ["old"]
    assert registry.retired_due("greenhouse", timedelta(days=30), limit=5) == ["old"]

    assert registry.add("greenhouse", ["old", "fresh", "recent"], origin="discovery") == ["fresh", "old", "recent"]
    assert sorted(registry.syncable("greenhouse")) == ["fresh", "old", "recent"]
    assert registry.add("greenhouse", ["old"], origin="discovery") == []  # already active


def test_a_board_keeps_the_first_display_name_it_is_given(store_url):
    registry = registry_for(store_url)
    registry.add("lever", ["idealistconsulting"], origin="cli")
    assert registry.display_name("lever", "idealistconsulting") is None
    registry.add("lever", ["idealistconsulting"], origin="discovery", display_names={"idealistconsulting": "Idealist Consulting"})
    registry.add("lever", ["idealistconsulting"], origin="discovery", display_names={"idealistconsulting": "IDEALIST"})
    assert registry.display_name("lever", "idealistconsulting") == "Idealist Consulting"
    registry.add("lever", ["acme"], origin="cli", display_names={"acme": "  Acme Labs "})
    assert registry.display_name("lever", "acme") == "Acme Labs" and registry.display_name("lever", "nope") is None


def test_candidates_are_kept_once_and_probed_never_probed_first(store_url):
    registry = registry_for(store_url)
    assert registry.add_candidates(["Northwind Labs", "  northwind labs ", "Fjordline", "", "Acme"], "file") == 3
    assert registry.add_candidates(["NORTHWIND-LABS", "Globex"], "cli") == 1
    due = registry.due_candidates(10, timedelta(days=30))
    assert [c.name for c in due] == ["Northwind Labs", "Fjordline", "Acme", "Globex"]
    by_name = {c.name: c for c in due}
    registry.record_probe(by_name["Northwind Labs"].id, "found", "greenhouse:northwindlabs")
    registry.record_probe(by_name["Fjordline"].id, "not_found", "no board")
    assert [c.name for c in registry.due_candidates(10, timedelta(days=30))] == ["Acme", "Globex"]
    # a long time later the not-found one is asked again, the found one never
    assert [c.name for c in registry.due_candidates(10, timedelta(0))] == ["Acme", "Globex", "Fjordline"]
    assert select(registry, sa.select(potential_companies.c.origin).where(
        potential_companies.c.name == "Globex")) == [("cli",)]


def test_companies_in_postings_come_from_the_named_sources(store_url):
    registry = registry_for(store_url)
    seed_jobs(registry, "company_files", "northwind", ["n1", "n2"], company="Northwind Labs")
    seed_jobs(registry, "himalayas", "feed", ["h1"], company="Fjordline")
    seed_jobs(registry, "greenhouse", "acme", ["a1"], company="Acme")
    assert sorted(registry.companies_in_postings(["company_files", "himalayas", "remoteok"])) == \
        ["Fjordline", "Northwind Labs"]
