"""The one Definitions object: a lane per source, discovery, saved searches, notifications, the catalog and
its health, the resources they share, the console logger, and the executor JOBSYNC_EXECUTOR chooses
(defs/executor.py)."""
import dagster as dg

from jobsync_pipeline.defs import (console, discovery, executor, freshness, lanes, notifications, operations,
                                   ops_alerts, resources, retention, run_failures, searches)
from jobsync_pipeline.defs.source_specs import SOURCE_SPECS

defs = dg.Definitions.merge(
    *(lanes.build_source_lane(spec) for spec in SOURCE_SPECS),
    discovery.defs,
    run_failures.defs,
    searches.defs,
    notifications.defs,
    operations.defs,
    freshness.defs,
    ops_alerts.defs,
    retention.defs,
    dg.Definitions(resources=resources.build_resources(), loggers={"console": console.console_logger},
                   executor=executor.build_executor()),
)
