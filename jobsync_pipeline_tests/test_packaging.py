"""jobsync installed without its source tree: what it needs at run time is in the wheel."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from jobsync_pipeline_tests.conftest import PROJECT_ROOT


def test_the_wheel_carries_the_sample_data_seed_list_and_migrations(tmp_path):
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "jobsync_pipeline", source / "jobsync_pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"jobsync_pipeline/data/seed_boards.json", "jobsync_pipeline/data/discovery_candidates.txt",
                "jobsync_pipeline/data/sample_bucket/snapshot_1/amberline-freight.json",
                "jobsync_pipeline/data/sample_bucket/snapshot_2/tessellate-studio.json",
                "jobsync_pipeline/store/migrations/env.py", "jobsync_pipeline/store/migrations/script.py.mako",
                "jobsync_pipeline/store/migrations/versions/0006_host_pacing.py"}
    assert expected <= names, expected - names
