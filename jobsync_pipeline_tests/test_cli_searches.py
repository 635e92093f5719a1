"""`jobsync users|searches|search` through the installed entry point, on a SQLite store."""
from __future__ import annotations

import json
import pytest

from jobsync_pipeline_tests.conftest import PROJECT_ROOT
from jobsync_pipeline_tests.test_cli import env, jobsync  # noqa: F401 - the fixture and the runner
from jobsync_pipeline_tests.test_searches import catalog

STATUS_KEYS = ["id", "user", "saved_search_id", "source", "status", "parameters", "client_context", "jobs_found",
               "error", "attempts", "created_at", "started_at", "completed_at", "jobs_found_capped"]


def ok(env, *args):
    done = jobsync(env, *args, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def refused(env, *args) -> str:
    done = jobsync(env, *args)
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


@pytest.fixture
def people(env, tmp_path):
    (tmp_path / "dagster_home" / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    assert jobsync(env, "db", "upgrade").returncode == 0
    catalog(env["JOBSYNC_DATABASE_URL"])
    ok(env, "users", "add", "ann@example.com", "--name", "Ann")
    ok(env, "users", "add", "bob@example.com", "--timezone", "America/New_York")
    return env


def test_users_are_added_and_listed(people):
    listed = ok(people, "users", "list")
    assert [(u["email"], u["timezone"]) for u in listed] == [("ann@example.com", "Europe/London"),
                                                            ("bob@example.com", "America/New_York")]
    assert "is not a time zone" in refused(people, "users", "add", "cy@example.com", "--timezone", "Mars/Base")
    assert "already exists" in refused(people, "users", "add", "ANN@example.com")
    assert len(ok(people, "users", "list")) == 2  # nothing written


@pytest.mark.parametrize("args, problem", [
    ((), "needs at least one filter"),
    (("--live-site", "indeed"), "live sites alone are not one"),
    (("--min-salary", "-5"), "min-salary: Input should be greater than or equal to 0"),
    (("--source", "monster"), "unknown source 'monster'"),
    (("--category", "wizardry"), "unknown category 'wizardry'"),
    (("--posted-within-days", "0"), "posted-within-days"),
])
def test_bad_saved_searches_are_refused_and_nothing_is_written(people, args, problem):
    assert problem in refused(people, "searches", "add", "--user", "ann@example.com", *args)
    assert ok(people, "searches", "list", "--user", "ann@example.com") == []


def test_a_search_from_start_to_results(people):
    saved = ok(people, "searches", "add", "--user", "ann@example.com", "--keywords", "python",
               "--location", "London", "Berlin")
    assert saved["parameters"] == {"keywords": "python", "locations": ["London", "Berlin"]}
    pending = ok(people, "search", "start", str(saved["id"]), "--user", "ann@example.com",
                 "--client-context", '{"device": "phone"}')
    assert list(pending) == STATUS_KEYS
    assert (pending["status"], pending["source"], pending["client_context"]) == ("pending", "manual", {"device": "phone"})
    again = ok(people, "search", "start", str(saved["id"]), "--user", "ann@example.com", "--wait")
    assert again["id"] == pending["id"]  # the pending run, not a second one: and now it ran
    assert (again["status"], again["jobs_found"], again["attempts"]) == ("success", 3, 1)
    assert again["started_at"] and again["completed_at"]
    results = ok(people, "search", "results", str(pending["id"]), "--user", "ann@example.com", "--limit", "2")
    assert [r["rank"] for r in results] == [1, 2]
    assert set(results[0]) >= {"job_id", "title", "company", "location", "workplace", "salary", "url", "posted_date", "why"}
    assert results[0]["why"][0].startswith("title has python")
    rerun = ok(people, "search", "rerun", str(pending["id"]), "--user", "ann@example.com")
    assert rerun["id"] != pending["id"] and rerun["status"] == "pending" and rerun["client_context"] == {"device": "phone"}
    assert ok(people, "search", "cancel", str(rerun["id"]), "--user", "ann@example.com")["status"] == "cancelled"
    assert [r["status"] for r in ok(people, "search", "history", "--user", "ann@example.com")] == ["cancelled", "success"]
    assert "is success: it cannot become cancelled" in refused(
        people, "search", "cancel", str(pending["id"]), "--user", "ann@example.com")


def test_another_users_run_answers_as_if_it_did_not_exist(people):
    saved = ok(people, "searches", "add", "--user", "ann@example.com", "--remote")
    run = ok(people, "search", "start", str(saved["id"]), "--user", "ann@example.com")
    for command in (("search", "status", str(run["id"])), ("search", "results", str(run["id"])),
                    ("search", "cancel", str(run["id"])), ("search", "rerun", str(run["id"]))):
        theirs = refused(people, *command, "--user", "bob@example.com")
        mine_missing = refused(people, *command[:2], "999", "--user", "bob@example.com")
        assert theirs.replace(str(run["id"]), "N") == mine_missing.replace("999", "N")
    assert "bob@example.com has no saved search" in refused(people, "search", "start", str(saved["id"]),
                                                            "--user", "bob@example.com")
    assert "bob@example.com has no saved search" in refused(people, "searches", "remove", str(saved["id"]),
                                                            "--user", "bob@example.com")
    assert ok(people, "search", "status", str(run["id"]), "--user", "ann@example.com")["status"] == "pending"


def test_a_bad_client_context_writes_nothing(people):
    saved = ok(people, "searches", "add", "--user", "ann@example.com", "--remote")
    assert "must be a JSON object" in refused(people, "search", "start", str(saved["id"]), "--user",
                                              "ann@example.com", "--client-context", "[1]")
    assert "at most 4,096" in refused(people, "search", "start", str(saved["id"]), "--user", "ann@example.com",
                                      "--client-context", json.dumps({"x": "y" * 5000}))
    assert ok(people, "search", "history", "--user", "ann@example.com") == []
    assert "no user nobody@example.com" in refused(people, "search", "history", "--user", "nobody@example.com")


def test_removing_a_saved_search_keeps_its_runs(people):
    saved = ok(people, "searches", "add", "--user", "ann@example.com", "--remote")
    run = ok(people, "search", "start", str(saved["id"]), "--user", "ann@example.com")
    assert ok(people, "searches", "remove", str(saved["id"]), "--user", "ann@example.com") == {"id": saved["id"], "removed": True}
    assert ok(people, "search", "status", str(run["id"]), "--user", "ann@example.com")["status"] == "cancelled"
    assert ok(people, "searches", "list", "--user", "ann@example.com") == []


def test_a_token_is_issued_once_and_revoked(people):
    issued = ok(people, "users", "token", "ann@example.com")
    assert issued["email"] == "ann@example.com" and issued["token"].startswith("jsk_")
    from jobsync_pipeline.store.repo import Store

    searches = Store(people["JOBSYNC_DATABASE_URL"]).searches
    assert searches.authenticate(issued["token"]).email == "ann@example.com"
    assert ok(people, "users", "token", "ann@example.com", "--revoke") == {"email": "ann@example.com", "revoked": 1}
    assert searches.authenticate(issued["token"]) is None
    assert "no user nobody@example.com" in refused(people, "users", "token", "nobody@example.com")
