"""The one Definitions object: a lane per source, discovery, and the resources they share."""
import dagster as dg

from jobsync_pipeline.defs import discovery, lanes, resources
from jobsync_pipeline.defs.source_specs import SOURCE_SPECS

defs = dg.Definitions.merge(
    *(lanes.build_source_lane(spec) for spec in SOURCE_SPECS),
    discovery.defs,
    dg.Definitions(resources=resources.build_resources()),
)
