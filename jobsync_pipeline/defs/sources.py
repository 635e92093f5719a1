"""The sources jobsync syncs: one `SourceSpec` each; the lane factory builds the rest."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


from jobsync_pipeline.core.models import ParsedSnapshot
from jobsync_pipeline.defs.sensors import build_bucket_sensor
from jobsync_pipeline.sources.base import RawPayload
from jobsync_pipeline.sources.company_files import CompanyFilesConnector


class Connector(Protocol):
    """What a lane needs of a source: its boards, one board's payload, and how to read it."""

    def boards(self) -> list[str]: ...
    def fetch(self, board: str) -> RawPayload: ...
    def parse(self, payload: RawPayload) -> ParsedSnapshot: ...


@dataclass(frozen=True)
class SourceSpec:
    name: str
    title: str
    kinds: frozenset[str]
    resource_keys: frozenset[str]
    connector: Callable[[Any], Connector]  # from the run's resources
    owners: tuple[str, ...] = ("team:ingest",)
    pool: str | None = None  # one Dagster pool per API host; a bucket needs none
    # the sensors and schedules that keep the lane fresh, given the lane's job and partitions
    automation: Callable[..., list] = field(default=lambda spec, job, partitions: [])

    @property
    def partitions_name(self) -> str:
        return f"{self.name}_boards"


COMPANY_FILES = SourceSpec(
    name="company_files",
    title="Company job files",
    kinds=frozenset({"python", "json"}),
    resource_keys=frozenset({"bucket"}),
    connector=lambda resources: CompanyFilesConnector(resources.bucket.bucket()),
    automation=lambda spec, job, partitions: [build_bucket_sensor(spec, job, partitions)],
)

SOURCE_SPECS: tuple[SourceSpec, ...] = (COMPANY_FILES,)
SOURCES_BY_NAME = {spec.name: spec for spec in SOURCE_SPECS}
