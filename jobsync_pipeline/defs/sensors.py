"""The bucket sensor: a new or changed `{company}.json` becomes a partition and a run for that file."""

import json

import dagster as dg

from jobsync_pipeline.core.status import BoardStatus
from jobsync_pipeline.defs import console
from jobsync_pipeline.defs.resources import BucketResource, StoreResource


def build_bucket_sensor(spec, job, partitions: dg.DynamicPartitionsDefinition) -> dg.SensorDefinition:
    @dg.sensor(name=f"{spec.name}_bucket_sensor", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Watches the bucket; adds each new company file as a partition and requests "
                           "a run for exactly the files that are new or changed (cursor: name → etag).")
    def bucket_sensor(context: dg.SensorEvaluationContext, bucket: BucketResource,
                      store: StoreResource) -> dg.SensorResult:
        listing = bucket.bucket().listing()
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        changed = [f for f in listing.files if seen.get(f.name) != f.etag]
        if changed:  # a company an operator removed stays removed until `jobsync boards add` brings it back
            registry = store.store().boards
            removed = {f.board for f in changed if registry.status(spec.name, f.board) == BoardStatus.RETIRED}
            for board in sorted(removed):
                context.log.info(f"{board}.json changed, but {spec.name}/{board} was removed: not synced")
            changed = [f for f in changed if f.board not in removed]
        known = set(context.instance.get_dynamic_partitions(partitions.name)) if changed else set()
        added = [f.board for f in changed if f.board not in known]
        for name, reason in listing.refused.items():
            if name not in seen:
                context.log.warning(f"refused {reason}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=f.board, run_key=f"{spec.name}:{f.board}:{f.etag}", run_config=console.RUN_CONFIG,
                                        tags={"jobsync/file": f.name, "jobsync/etag": f.etag})
                          for f in changed],
            dynamic_partitions_requests=[partitions.build_add_request(added)] if added else [],
            # refused names stay in the cursor so each is warned about once, not every minute
            cursor=json.dumps({**{n: "refused" for n in listing.refused},
                               **{f.name: f.etag for f in listing.files}}, sort_keys=True),
        )

    return bucket_sensor
