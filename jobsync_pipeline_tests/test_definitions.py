"""The one Definitions object loads, validates, and describes every asset the way the UI needs."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import dagster as dg

from jobsync_pipeline.definitions import defs
from jobsync_pipeline_tests.conftest import PROJECT_ROOT

PURE_PACKAGES = ("core", "sources", "store", "notify")


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_dagster_definitions_validate_passes_without_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSYNC_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    subprocess.run([dagster, "definitions", "validate", "-w", "workspace.yaml"], cwd=PROJECT_ROOT, env=env,
                   check=True, capture_output=True, timeout=300)


def test_every_asset_has_description_group_kinds_and_owners():
    for assets_def in defs.resolve_all_asset_specs():
        assert assets_def.description, assets_def.key
        assert assets_def.group_name == assets_def.key.path[0], assets_def.key
        assert assets_def.kinds, assets_def.key
        assert assets_def.owners, assets_def.key


def test_lane_is_raw_snapshot_then_postings_then_job_diff():
    graph = {spec.key.to_user_string(): {d.asset_key.to_user_string() for d in spec.deps}
             for spec in defs.resolve_all_asset_specs()}
    assert graph["company_files/postings"] == {"company_files/raw_snapshot"}
    assert graph["company_files/job_diff"] == {"company_files/postings"}


def test_pure_packages_never_import_dagster_or_the_wiring():
    for package in PURE_PACKAGES:
        for path in (PROJECT_ROOT / "jobsync_pipeline" / package).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(import dagster|from dagster)", text, re.M), path
            assert "jobsync_pipeline.defs" not in text, path


def test_importing_the_definitions_changes_no_variable_creates_no_folder_and_warns_of_nothing(tmp_path):
    script = (
        "import os, sys, warnings\n"
        "before = dict(os.environ)\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    import jobsync_pipeline.definitions\n"
        "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
        "noted = [str(w.message) for w in caught if w.category.__name__ in ('BetaWarning', 'PreviewWarning')]\n"
        "assert not noted, noted\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSYNC_") and k != "DAGSTER_HOME"}
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=300)
    assert list(tmp_path.iterdir()) == []


def test_automation_that_calls_public_apis_starts_stopped():
    sensors = [defs.resolve_sensor_def(s.name) for s in defs.sensors]
    running = {s.name for s in sensors if s.default_status == dg.DefaultSensorStatus.RUNNING}
    # the bucket sensor reads the local bucket; the run-failure sensors and the search-run sensor and
    # schedule read and write the local store; delivery and the follow-ups reach only the channels users
    # gave (the dev outbox folder by default): nothing else starts
    assert running == {"company_files_bucket_sensor", "interrupted_syncs_sensor", "search_run_sensor",
                       "failed_search_runs_sensor", "canceled_search_runs_sensor", "delivery_sensor",
                       "notification_batches_sensor", "sync_health_sensor", "freshness_sensor", "ops_alerts_sensor"}
    assert len(sensors) == 13 and len(defs.schedules) == 11
    running_schedules = {s.name for s in defs.schedules
                         if defs.resolve_schedule_def(s.name).default_status == dg.DefaultScheduleStatus.RUNNING}
    assert running_schedules == {"search_schedule", "followups_schedule", "notifications_cleanup_schedule",
                                 "operations_schedule", "retention_schedule"}


def test_the_code_location_is_named_jobsync():
    assert "location_name: jobsync\n" in (PROJECT_ROOT / "workspace.yaml").read_text()
