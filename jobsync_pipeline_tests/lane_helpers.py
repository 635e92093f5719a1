"""Running a lane in-process against a real store and a real bucket folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from jobsync_pipeline.defs.run_tags import RANGE_END, RANGE_START
from jobsync_pipeline.defs.lanes import build_source_lane
from jobsync_pipeline.defs.resources import BucketResource, StoreResource, SyncPolicyResource
from jobsync_pipeline.defs.source_specs import COMPANY_FILES

LANE = build_source_lane(COMPANY_FILES)
BOARDS = ["amberline-freight", "marisol-hoteles", "tessellate-studio"]


def fill_bucket(bucket: Path, *files: Path) -> None:
    bucket.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, bucket / f.name)


def run_lane(instance: dg.DagsterInstance, store_url: str, bucket: Path, boards: list[str],
             **bucket_config) -> dg.ExecuteInProcessResult:
    """One run of the lane over `boards` (a single-run backfill when there are several)."""
    new = [b for b in boards if not instance.has_dynamic_partition(COMPANY_FILES.partitions_name, b)]
    instance.add_dynamic_partitions(COMPANY_FILES.partitions_name, new)
    keys = instance.get_dynamic_partitions(COMPANY_FILES.partitions_name)
    selected = sorted(boards, key=keys.index)
    return dg.materialize(
        LANE.assets, instance=instance, raise_on_error=False,
        resources={"store": StoreResource(url=store_url), "bucket": BucketResource(url=str(bucket), **bucket_config),
                   "sync_policy": SyncPolicyResource()},
        **({"partition_key": selected[0]} if len(selected) == 1 else
           {"tags": {RANGE_START: selected[0], RANGE_END: selected[-1]}}))


def partition_metadata(result: dg.ExecuteInProcessResult, stage: str) -> dict[str, dict]:
    """Each board's numbers on the stage's materializations."""
    return {m.partition: {k: v.value for k, v in m.metadata.items()}
            for m in result.asset_materializations_for_node(f"company_files__{stage}")}


def query(url: str, sql: str, **params) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()
