"""Freshness: every lane's `job_diff` has Dagster's last-update freshness check in the cadence of its
schedule (a source with no applied board for twice its interval is overdue), the catalog one of its own
(refreshed every 30 minutes), all evaluated by one sensor.

Dagster 1.13 calls these checks superseded by freshness policies, which are a preview its daemon
evaluates only behind an instance flag; the checks are stable, evaluate on a sensor we ship running, show
on the asset as checks, and can be tested against a fake clock.
"""
from datetime import timedelta

import dagster as dg

from jobsync_pipeline.defs.operations import CATALOG
from jobsync_pipeline.defs.source_specs import SOURCE_SPECS

STALE_AFTER_INTERVALS = 2
CATALOG_FRESH_WITHIN = timedelta(hours=1)  # two of its 30-minute refreshes

LANE_CHECKS = [check for spec in SOURCE_SPECS for check in dg.build_last_update_freshness_checks(
    assets=[dg.AssetKey([spec.name, "job_diff"])], lower_bound_delta=spec.interval * STALE_AFTER_INTERVALS)]
CATALOG_CHECKS = dg.build_last_update_freshness_checks(assets=[CATALOG], lower_bound_delta=CATALOG_FRESH_WITHIN)
FRESHNESS_CHECKS = [*LANE_CHECKS, *CATALOG_CHECKS]

# reads the instance only and launches the checks' runs: on by default
freshness_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=FRESHNESS_CHECKS, name="freshness_sensor", minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING)

defs = dg.Definitions(asset_checks=FRESHNESS_CHECKS, sensors=[freshness_sensor])
