"""Dagster wiring only: the lane factory, source specs, sensors, schedules, discovery and resources.

Every way the definitions load (code server, webserver, `dagster definitions validate`, the CLI,
tests) imports this package first, so the notices about 1.13 features the lanes rely on on purpose
are filtered here, each by its exact message: the single-run `backfill_policy` (beta) and partitioned
asset checks (preview), which record each board's outcome on its own partition; and the `owners` of a
sensor, which Dagster itself passes (as None) when it binds the resources to the op job a sensor
launches (deliver_notifications); and the freshness checks of every lane and of the catalog, which 1.13
calls superseded by freshness policies (a preview, evaluated only with an instance flag), see
defs/freshness.py.
"""
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
