"""The run-failure sensor ends the syncs a failed run left running."""
from __future__ import annotations

import dagster as dg

from jobsync_pipeline.defs.resources import StoreResource
from jobsync_pipeline.defs.run_failures import interrupted_syncs_sensor
from jobsync_pipeline.store import Store


@dg.asset
def stops_half_way() -> None:
    raise RuntimeError("the process was told to stop")


def test_a_failed_runs_running_syncs_end_as_interrupted(sqlite_url):
    with dg.instance_for_test() as instance:
        result = dg.materialize([stops_half_way], instance=instance, raise_on_error=False)
        store = Store(sqlite_url)
        left = store.start_sync("greenhouse", "acme", run_id=result.run_id)
        store.record_sync("greenhouse", "globex", "success", run_id=result.run_id)
        failure = result.get_run_failure_event()
        context = dg.build_run_status_sensor_context(
            sensor_name="interrupted_syncs_sensor", dagster_instance=instance, dagster_event=failure,
            dagster_run=result.dagster_run, resources={"store": StoreResource(url=sqlite_url)},
        ).for_run_failure()
        interrupted_syncs_sensor(context)
    ended = store.sync_result(left)
    assert ended.status == "failed" and ended.error.startswith("interrupted: ")
    assert [s.status for s in store.syncs_for_run(result.run_id)] == ["failed", "success"]
