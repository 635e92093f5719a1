"""The one Definitions object loads, validates, and describes every asset the way the UI needs."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import dagster as dg

from jobsync_pipeline.definitions import defs
from jobsync_pipeline.settings import PROJECT_ROOT

PURE_PACKAGES = ("core", "sources", "store")


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
