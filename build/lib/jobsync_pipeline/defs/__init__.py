"""Dagster wiring only: the lane factory, source specs, sensors, schedules, discovery and resources.

Every way the definitions load (code server, webserver, `dagster definitions validate`, the CLI,
tests) imports this package first, so the two notices about 1.13 features the lanes rely on on purpose
are filtered here, each by its exact message: the single-run `backfill_policy` (beta) and partitioned
asset checks (preview), which record each board's outcome on its own partition.
"""
import warnings

import dagster as dg

warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function", category=dg.BetaWarning)
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec",
                        category=dg.PreviewWarning)
