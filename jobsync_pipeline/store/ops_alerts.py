"""The operator alerts raised: which conditions are firing, so that each is announced when it starts,
repeated at most once per `repeat_every` while it holds, and cleared with one recovery message."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from jobsync_pipeline.core.ops_alerts import Condition
from jobsync_pipeline.store.tables import ops_alerts
from jobsync_pipeline.store.time import as_utc, utcnow

FIRING, CLEARED = "firing", "cleared"


@dataclass(frozen=True)
class Announcement:
    kind: str  # alert | repeat | recovered
    key: str
    message: str


class OpsAlertStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def transition(self, holding: Iterable[Condition], *, now: datetime | None = None,
                   repeat_every: timedelta = timedelta(hours=1)) -> list[Announcement]:
        """Record which conditions hold now and return what to announce; one transaction, the table row
        locked on PostgreSQL, so two passes at once never announce one condition twice."""
        now = now or utcnow()
        holding = {c.key: c for c in holding}
        announce: list[Announcement] = []
        with self.engine.begin() as conn:
            query = sa.select(ops_alerts)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            known = {row.key: row for row in conn.execute(query)}
            for key, condition in holding.items():
                row = known.get(key)
                if row is None:
                    conn.execute(ops_alerts.insert().values(key=key, state=FIRING, message=condition.message,
                                                            first_at=now, last_sent_at=now, sends=1))
                    announce.append(Announcement("alert", key, condition.message))
                elif row.state == CLEARED:
                    conn.execute(ops_alerts.update().where(ops_alerts.c.key == key).values(
                        state=FIRING, message=condition.message, first_at=now, last_sent_at=now, cleared_at=None,
                        sends=row.sends + 1))
                    announce.append(Announcement("alert", key, condition.message))
                elif now - as_utc(row.last_sent_at) >= repeat_every:
                    conn.execute(ops_alerts.update().where(ops_alerts.c.key == key).values(
                        message=condition.message, last_sent_at=now, sends=row.sends + 1))
                    announce.append(Announcement("repeat", key, condition.message))
            for key, row in known.items():
                if row.state == FIRING and key not in holding:
                    conn.execute(ops_alerts.update().where(ops_alerts.c.key == key).values(
                        state=CLEARED, cleared_at=now))
                    announce.append(Announcement("recovered", key, f"recovered: {row.message}"))
        return announce

    def firing(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(ops_alerts.c.key).where(ops_alerts.c.state == FIRING)
                                     .order_by(ops_alerts.c.key)))
