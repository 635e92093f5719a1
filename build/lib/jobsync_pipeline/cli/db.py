"""`jobsync db upgrade`: bring the store's schema to this jobsync's, on purpose."""
from __future__ import annotations

from jobsync_pipeline import settings
from jobsync_pipeline.store.engine import masked, upgrade


def upgrade_store() -> dict:
    url = settings.database_url()
    before, after = upgrade(url)
    return {"store": masked(url), "from": before, "to": after}
