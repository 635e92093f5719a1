"""The sources jobsync syncs: one `SourceSpec` each; the lane factory builds the rest."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobsync_pipeline.core.models import ParsedSnapshot
from jobsync_pipeline.defs.discovery import build_board_sensor
from jobsync_pipeline.defs.sensors import build_bucket_sensor
from jobsync_pipeline.sources.base import RawPayload
from jobsync_pipeline.sources.company_files import CompanyFilesConnector
from jobsync_pipeline.sources.greenhouse import GreenhouseConnector
from jobsync_pipeline.sources.lever import LeverConnector
from jobsync_pipeline.store import Store


class Connector(Protocol):
    """What a lane needs of a source: one board's payload, and how to read it."""

    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload: ...
    def parse(self, payload: RawPayload) -> ParsedSnapshot: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceSpec:
    name: str
    title: str
    kinds: frozenset[str]
    resource_keys: frozenset[str]
    connector: Callable[[Any], Connector]  # from the run's resources
    known_boards: Callable[[Any, Store], list[str]]  # every board the source knows, from resources and store
    owners: tuple[str, ...] = ("team:ingest",)
    pool: str | None = None  # one Dagster pool per API host; a bucket needs none
    cron: str | None = None  # the sync schedule; stagger minutes so two API sources never start together
    board_registry: bool = False  # boards come from the registry (CLI, seed list, discovery), not a listing
    # the sensors that keep the lane fresh, given the spec, the lane's job and its partitions
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
    known_boards=lambda resources, store: [f.board for f in resources.bucket.bucket().list_files()],
    automation=lambda spec, job, partitions: [build_bucket_sensor(spec, job, partitions)],
)

def ats_source(name: str, title: str, connector_class, cron: str) -> SourceSpec:
    """An applicant-tracking API: boards from the registry, one pool per host, a sync schedule."""
    return SourceSpec(
        name=name,
        title=title,
        kinds=frozenset({"python", "httpx"}),
        resource_keys=frozenset({"http", "sync_policy"}),
        connector=lambda resources: connector_class(resources.http.client(),
                                                    getattr(resources.http, f"{name}_base_url")),
        known_boards=lambda resources, store: store.boards.syncable(name),
        pool=f"{name}_api",
        cron=cron,
        board_registry=True,
        automation=lambda spec, job, partitions: [build_board_sensor(spec.name, partitions, job)],
    )


GREENHOUSE = ats_source("greenhouse", "Greenhouse job boards", GreenhouseConnector, cron="7,22,37,52 * * * *")
LEVER = ats_source("lever", "Lever job sites", LeverConnector, cron="12,27,42,57 * * * *")

SOURCE_SPECS: tuple[SourceSpec, ...] = (COMPANY_FILES, GREENHOUSE, LEVER)
SOURCES_BY_NAME = {spec.name: spec for spec in SOURCE_SPECS}
