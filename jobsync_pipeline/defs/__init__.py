"""Dagster wiring only: the lane factory, source specs, sensors, schedules, discovery and resources.

Every way the definitions load (code server, webserver, `dagster definitions validate`, the CLI,
tests) imports this package first, so the notices about 1.13 features the lanes rely on on purpose
are filtered here, each by its exact message: the lanes' `backfill_policy` (beta) and partitioned
asset checks (preview), which record each board's outcome on its own partition; and the `owners` of a
sensor, which Dagster itself passes (as None) when it binds the resources to the op job a sensor
launches (deliver_notifications); and the freshness checks of every lane and of the catalog, which 1.13
calls superseded by freshness policies (a preview, evaluated only with an instance flag), see
defs/freshness.py.

It also sets two of Dagster's own switches for runs over many partitions, unless the environment sets
them: a lane step materializes each board of its run, and Dagster stores those events one at a time
(milliseconds each) unless DAGSTER_EVENT_BATCH_SIZE is set, when it writes them as batches (on
PostgreSQL one insert per batch); and a run's creation logs a planned event per partition of each asset
(30,000 for a 10,000-board backfill, before the run starts) unless
DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS is set, when it logs one per asset naming its partitions.
The price of the second: a board that fails is not shown as a failed partition of the asset (its
`board_outcome` check is failed). Runs are created where they are launched (the webserver, the daemon),
so scripts/serve.sh and deploy/ set it for those processes too.
"""
import os
import warnings

import dagster as dg

warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function", category=dg.BetaWarning)
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec",
                        category=dg.PreviewWarning)
warnings.filterwarnings("ignore", message="Parameter `owners` of initializer `SensorDefinition.__init__`",
                        category=dg.BetaWarning)
for superseded in ("build_last_update_freshness_checks", "build_sensor_for_freshness_checks"):
    warnings.filterwarnings("ignore", message=f"Function `{superseded}` is superseded",
                            category=dg.SupersessionWarning)

os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
