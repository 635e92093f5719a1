"""When a lane run fails without finishing its boards (its process killed, found dead by run
monitoring, canceled), the `syncs` rows it left `running` end failed, `interrupted`."""
import dagster as dg

from jobsync_pipeline.defs.resources import StoreResource


@dg.run_failure_sensor(name="interrupted_syncs_sensor", minimum_interval_seconds=60,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Ends the syncs a failed lane run left running as failed, 'interrupted', "
                                   "so no board shows a sync in progress that nothing is doing. Reads and writes "
                                   "the local store only.")
def interrupted_syncs_sensor(context: dg.RunFailureSensorContext, store: StoreResource) -> None:
    run = context.dagster_run
    reason = (context.failure_event.message or "the run failed").splitlines()[0][:300]
    ended = store.store().interrupt_syncs(run.run_id, reason)
    if ended:
        context.log.info(f"run {run.run_id}: {ended} sync(s) left running ended as interrupted")


defs = dg.Definitions(sensors=[interrupted_syncs_sensor])
