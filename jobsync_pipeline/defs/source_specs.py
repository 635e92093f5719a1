"""The sources jobsync syncs: one `SourceSpec` each; the lane factory builds the rest."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import dagster as dg

from jobsync_pipeline.core.models import ParsedSnapshot
from jobsync_pipeline.core.steps import API_STEPS, CRAWL_STEPS, StepPlan
from jobsync_pipeline.defs.discovery import build_board_sensor
from jobsync_pipeline.defs.sensors import build_bucket_sensor
from jobsync_pipeline.settings import remoteok_tags
from jobsync_pipeline.sources import himalayas
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.company_files import CompanyFilesConnector
from jobsync_pipeline.sources.greenhouse import GreenhouseConnector
from jobsync_pipeline.sources.himalayas import HimalayasConnector
from jobsync_pipeline.sources.lever import LeverConnector
from jobsync_pipeline.sources.remoteok import FEED_BOARD, RemoteOkConnector
from jobsync_pipeline.sources.site_config import SOURCE as SITE_SOURCE
from jobsync_pipeline.sources.site_crawl import SiteCrawlConnector
from jobsync_pipeline.store import Store


class Connector(Protocol):
    """What a lane needs of a source: one board's payload, and how to read it."""

    # a connector whose spec's steps say it reports its own fetch steps also takes `progress=` (StepReporter)
    def fetch(self, board: str, previous: RawPayload | None = None) -> RawPayload: ...
    # `company`: the board's company name in the registry, for sources whose payload names none
    def parse(self, payload: RawPayload, company: str | None = None) -> ParsedSnapshot: ...
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
    static_partitions: tuple[str, ...] | None = None  # fixed partitions (a feed's tags) instead of dynamic ones
    complete_snapshots: bool = True  # a snapshot lists every open posting; a feed's lists recent ones
    jobs_board: str | None = None  # the board jobs are kept under when every partition feeds one catalog
    batch_size: int | None = None  # partitions per scheduled tick, when not the sync policy's
    steps: StepPlan = API_STEPS  # what each sync records in sync_steps
    # how often a board of the source is expected to sync: its schedule's period (the bucket: the scraper's
    # daily upload); a source without a success for twice this long is stale
    interval: timedelta = timedelta(days=1)
    payload: str = "each board's payload exactly as fetched"  # what raw_snapshot archives, as its description says
    # the sensors that keep the lane fresh, given the spec, the lane's job and its partitions
    automation: Callable[..., list] = field(default=lambda spec, job, partitions: [])

    @property
    def partitions_name(self) -> str:
        return f"{self.name}_boards"

    def partitions_def(self) -> dg.PartitionsDefinition:
        if self.static_partitions is not None:
            return dg.StaticPartitionsDefinition(list(self.static_partitions))
        return dg.DynamicPartitionsDefinition(name=self.partitions_name)


COMPANY_FILES = SourceSpec(
    name="company_files",
    title="Company job files",
    kinds=frozenset({"python", "json"}),
    resource_keys=frozenset({"bucket"}),
    connector=lambda resources: CompanyFilesConnector(resources.bucket.bucket()),
    known_boards=lambda resources, store: [f.board for f in resources.bucket.bucket().list_files()],
    automation=lambda spec, job, partitions: [build_bucket_sensor(spec, job, partitions)],
)

def ats_source(name: str, title: str, connector_class, cron: str, interval: timedelta) -> SourceSpec:
    """An applicant-tracking API: boards from the registry, one pool per host, a sync schedule."""
    return SourceSpec(
        name=name,
        title=title,
        kinds=frozenset({"python", "httpx"}),
        resource_keys=frozenset({"http", "sync_policy"}),
        connector=lambda resources: connector_class(resources.http.client(),
                                                    resources.http.base_url(name)),
        known_boards=lambda resources, store: store.boards.syncable(name),
        pool=f"{name}_api",
        cron=cron,
        interval=interval,
        board_registry=True,
        automation=lambda spec, job, partitions: [build_board_sensor(spec.name, partitions, job)],
    )


def feed_source(name: str, title: str, connector_class, cron: str, interval: timedelta, partitions: tuple[str, ...],
                batch_size: int, options: Callable[[Any], dict] = lambda resources: {}) -> SourceSpec:
    """An aggregator feed: fixed partitions, its own slower pace per host, expiry by age not absence.
    `options` are the connector's keyword arguments from the run's resources."""
    return SourceSpec(
        name=name,
        title=title,
        kinds=frozenset({"python", "httpx"}),
        resource_keys=frozenset({"http", "sync_policy"}),
        connector=lambda resources: connector_class(resources.http.client(resources.http.feed_requests_per_second,
                                                                          resources.http.feed_request_deadline_seconds),
                                                    resources.http.base_url(name),
                                                    **options(resources)),
        known_boards=lambda resources, store: list(partitions),
        pool=f"{name}_api",
        cron=cron,
        interval=interval,
        static_partitions=partitions,
        complete_snapshots=False,
        jobs_board=FEED_BOARD,
        batch_size=batch_size,
    )


GREENHOUSE = ats_source("greenhouse", "Greenhouse job boards", GreenhouseConnector, cron="7,22,37,52 * * * *",
                        interval=timedelta(minutes=15))
LEVER = ats_source("lever", "Lever job sites", LeverConnector, cron="12,27,42,57 * * * *",
                   interval=timedelta(minutes=15))

# RemoteOK steps to the next tag (the stalest) every tick; Himalayas reads its whole feed each tick.
REMOTEOK = feed_source("remoteok", "RemoteOK feed", RemoteOkConnector, cron="2,17,32,47 * * * *",
                       interval=timedelta(minutes=15), partitions=remoteok_tags(), batch_size=1)
HIMALAYAS = feed_source("himalayas", "Himalayas feed", HimalayasConnector, cron="45 * * * *", interval=timedelta(hours=1),
                        partitions=(himalayas.FEED_BOARD,), batch_size=1,
                        options=lambda resources: {"max_pages": resources.sync_policy.feed_max_pages})

# Job sites publishing schema.org JobPosting, crawled by keyword: a site is a board of the registry (its
# configuration in `sites`), synced daily, stalest first; a crawl lists some of a site's jobs, so they
# expire by their validThrough or by age, never by absence.
SITE_CRAWL = SourceSpec(
    name=SITE_SOURCE,
    title="Job sites (schema.org JobPosting)",
    kinds=frozenset({"python", "httpx"}),
    resource_keys=frozenset({"http", "sync_policy"}),
    connector=lambda resources: SiteCrawlConnector(resources.store.store().sites.config, resources.http.site_client,
                                                   browser_path=resources.http.chromium_path),
    known_boards=lambda resources, store: store.sites.active(),
    pool="site_crawl",
    cron="20 3 * * *",
    interval=timedelta(days=1),
    board_registry=True,
    complete_snapshots=False,
    steps=CRAWL_STEPS,
    payload="each site's crawl: its result pages and each job page's JobPosting items exactly as extracted",
    automation=lambda spec, job, partitions: [build_board_sensor(spec.name, partitions, job)],
)

SOURCE_SPECS: tuple[SourceSpec, ...] = (COMPANY_FILES, GREENHOUSE, LEVER, REMOTEOK, HIMALAYAS, SITE_CRAWL)
SOURCES_BY_NAME = {spec.name: spec for spec in SOURCE_SPECS}
