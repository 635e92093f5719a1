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

GREENHOUSE = SourceSpec(
    name="greenhouse",
    title="Greenhouse job boards",
    kinds=frozenset({"python", "httpx"}),
    resource_keys=frozenset({"http", "sync_policy"}),
    connector=lambda resources: GreenhouseConnector(resources.http.client(), resources.http.greenhouse_base_url),
    known_boards=lambda resources, store: store.boards.syncable("greenhouse"),
    pool="greenhouse_api",
    cron="7,22,37,52 * * * *",
    board_registry=True,
    automation=lambda spec, job, partitions: [build_board_sensor(spec.name, partitions, job)],
)

LEVER = SourceSpec(
    name="lever",
    title="Lever job sites",
    kinds=frozenset({"python", "httpx"}),
    resource_keys=frozenset({"http", "sync_policy"}),
    connector=lambda resources: LeverConnector(resources.http.client(), resources.http.lever_base_url),
    known_boards=lambda resources, store: store.boards.syncable("lever"),
    pool="lever_api",
    cron="12,27,42,57 * * * *",
    board_registry=True,
    automation=lambda spec, job, partitions: [build_board_sensor(spec.name, partitions, job)],
)

SOURCE_SPECS: tuple[SourceSpec, ...] = (COMPANY_FILES, GREENHOUSE, LEVER)
SOURCES_BY_NAME = {spec.name: spec for spec in SOURCE_SPECS}
