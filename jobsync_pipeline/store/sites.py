"""Crawled sites: each one's validated configuration (`sites`) and whether it is synced (its `boards`
row: active, or inactive), written together in one transaction."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from jobsync_pipeline.core.status import SYNCABLE, BoardStatus
from jobsync_pipeline.sources.site_config import SEED_SITE, SOURCE, SiteConfig
from jobsync_pipeline.store.tables import boards, sites
from jobsync_pipeline.store.time import as_utc, utcnow

_CONFIG_COLUMNS = ("search_url", "max_pages", "request_delay", "max_jobs", "timeout", "browser", "link_selector",
                   "language")


class SiteError(ValueError):
    """A site that does not exist, or exists already: the operator's mistake, said in one line."""


@dataclass(frozen=True)
class SiteInfo:
    config: SiteConfig
    active: bool
    status: str  # the board's: active, failing, retired or inactive
    created_at: datetime
    updated_at: datetime
    last_synced_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {**self.config.model_dump(mode="json"), "active": self.active, "status": self.status,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
                "last_synced_at": self.last_synced_at.isoformat() if self.last_synced_at else None}


class SiteStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def add(self, config: SiteConfig, *, active: bool = True, origin: str = "cli") -> SiteInfo:
        with self.engine.begin() as conn:
            if conn.scalar(sa.select(sites.c.name).where(sites.c.name == config.name)) is not None:
                raise SiteError(f"site {config.name!r} exists already; `jobsync sites set {config.name} …` changes it")
            now = utcnow()
            conn.execute(sites.insert().values(name=config.name, **_columns(config), created_at=now, updated_at=now))
            status = BoardStatus.ACTIVE if active else BoardStatus.INACTIVE
            if conn.scalar(sa.select(boards.c.board).where(boards.c.source == SOURCE, boards.c.board == config.name)):
                conn.execute(boards.update().where(boards.c.source == SOURCE, boards.c.board == config.name).values(
                    status=status, status_changed_at=now, status_reason=f"site added ({origin})", consecutive_not_found=0))
            else:
                conn.execute(boards.insert().values(source=SOURCE, board=config.name, added_at=now, origin=origin,
                                                    status=status, status_changed_at=now))
        return self.info(config.name)

    def set(self, name: str, changes: Mapping[str, Any], *, active: bool | None = None) -> SiteInfo:
        """Change a site's configuration (validated whole, as it will be used) and whether it is synced."""
        current = self.config(name)
        config = SiteConfig.model_validate({**current.model_dump(), **changes}) if changes else current
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(sites.update().where(sites.c.name == name).values(**_columns(config), updated_at=now))
            if active is not None:
                conn.execute(boards.update().where(boards.c.source == SOURCE, boards.c.board == name).values(
                    status=BoardStatus.ACTIVE if active else BoardStatus.INACTIVE, consecutive_not_found=0,
                    status_changed_at=now, status_reason="set active" if active else "set inactive"))
        return self.info(name)

    def config(self, name: str) -> SiteConfig:
        """The site's configuration; SiteError when there is no such site."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sites).where(sites.c.name == name)).first()
        if row is None:
            raise SiteError(f"no site {name!r}; `jobsync sites list` shows the sites, `jobsync sites add` adds one")
        return _config(row)

    def info(self, name: str) -> SiteInfo:
        found = self.list(name)
        if not found:
            raise SiteError(f"no site {name!r}; `jobsync sites list` shows the sites, `jobsync sites add` adds one")
        return found[0]

    def list(self, name: str | None = None) -> list[SiteInfo]:
        query = (sa.select(sites, boards.c.status.label("board_status"), boards.c.last_synced_at)
                 .select_from(sites.outerjoin(boards, sa.and_(boards.c.source == SOURCE, boards.c.board == sites.c.name)))
                 .order_by(sites.c.name))
        if name is not None:
            query = query.where(sites.c.name == name)
        with self.engine.connect() as conn:
            return [SiteInfo(config=_config(row), active=row.board_status in SYNCABLE,
                             status=row.board_status or BoardStatus.INACTIVE, created_at=as_utc(row.created_at),
                             updated_at=as_utc(row.updated_at), last_synced_at=as_utc(row.last_synced_at))
                    for row in conn.execute(query)]

    def active(self) -> list[str]:
        return [info.config.name for info in self.list() if info.active]

    def seed(self) -> SiteInfo | None:
        """Add the example site (inactive); None when a site of its name exists already."""
        try:
            return self.add(SEED_SITE, active=False, origin="seed")
        except SiteError:
            return None


def _columns(config: SiteConfig) -> dict[str, Any]:
    return {**{c: getattr(config, c) for c in _CONFIG_COLUMNS}, "keywords": json.dumps(list(config.keywords))}


def _config(row) -> SiteConfig:
    return SiteConfig(name=row.name, keywords=json.loads(row.keywords), **{c: getattr(row, c) for c in _CONFIG_COLUMNS})
