"""The catalog and its health in the graph: `catalog` (the `jobs` table and the `canonical_jobs` view, fed
by every lane) and `operations/sync_health` (per source and board: last success, success rate, durations,
jobs found, the newest posting's age, errors by kind; the queues' depth and age), refreshed after syncs
by a sensor and on a schedule. `jobsync status` prints the same report."""
from datetime import datetime

import dagster as dg
import sqlalchemy as sa

from jobsync_pipeline.core.health import Health, judge
from jobsync_pipeline.defs import console
from jobsync_pipeline.defs.resources import StoreResource
from jobsync_pipeline.defs.source_specs import SOURCE_SPECS
from jobsync_pipeline.store.health import HealthStore
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline.store.tables import jobs, syncs
from jobsync_pipeline.store.time import utcnow

OWNERS = ["team:ingest"]
CATALOG = dg.AssetKey(["catalog"])
SYNC_HEALTH = dg.AssetKey(["operations", "sync_health"])


@dg.asset(key=CATALOG, group_name="catalog", kinds={"sql"}, owners=OWNERS,
          deps=[dg.AssetDep(dg.AssetKey([spec.name, "job_diff"]), partition_mapping=dg.AllPartitionMapping())
                for spec in SOURCE_SPECS],
          description="The catalog: the `jobs` table (one row per source posting, open or expired) and the "
                      "`canonical_jobs` view (each job once across sources), written by every lane's job_diff. "
                      "Materializing it reads what is there: its schema and row counts per source.")
def catalog(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    engine = store.store().engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.source, jobs.c.expired_at.is_(None).label("open"), sa.func.count())
                            .group_by(jobs.c.source, jobs.c.expired_at.is_(None))).all()
        canonical = conn.scalar(sa.text("SELECT count(*) FROM canonical_jobs"))  # open jobs, each once
    counts: dict[str, dict[str, int]] = {}
    for source, is_open, count in rows:
        counts.setdefault(source, {"active": 0, "expired": 0})["active" if is_open else "expired"] += int(count)
    active = sum(c["active"] for c in counts.values())
    expired = sum(c["expired"] for c in counts.values())
    per_source = {f"{kind}_{source}": dg.MetadataValue.int(c[kind]) for source, c in sorted(counts.items())
                  for kind in ("active", "expired")}
    return dg.MaterializeResult(metadata={
        "dagster/column_schema": table_schema(jobs),
        "dagster/row_count": dg.MetadataValue.int(active + expired),
        "active": dg.MetadataValue.int(active), "expired": dg.MetadataValue.int(expired),
        "canonical_active": dg.MetadataValue.int(int(canonical or 0)),
        **per_source,
    })


def table_schema(table: sa.Table) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(column.name, str(column.type), description=column.comment)
                                   for column in table.columns])


def health_report(store: Store, now: datetime | None = None) -> dict:
    """Every source's verdict and figures, the queues, and the worst boards: what sync_health records and
    `jobsync status` prints."""
    now = now or utcnow()
    health = HealthStore(store.engine)
    recent = health.recent_syncs(now)  # read once for the sources' figures and the worst boards
    sources = []
    for figures in health.sources({spec.name: spec.interval for spec in SOURCE_SPECS}, now, recent=recent):
        verdict, reasons = judge(figures, now)
        sources.append({
            "source": figures.source, "status": str(verdict), "reasons": reasons, "boards": figures.boards,
            "boards_failing": figures.boards_failing, "boards_retired": figures.boards_retired,
            "syncs_7d": figures.syncs, "success_rate_7d": _rounded(figures.success_rate),
            "last_success": figures.last_success.isoformat() if figures.last_success else None,
            "duration_median_seconds": figures.duration_median, "duration_p95_seconds": figures.duration_p95,
            "jobs_found": figures.jobs_found, "active_jobs": figures.active_jobs,
            "newest_posting_age_hours": figures.newest_posting_age_hours(now), "errors_by_kind": figures.errors})
    queues = [{"queue": q.name, "pending": q.pending, "oldest_pending_minutes": q.oldest_age_minutes(now)}
              for q in health.queues(now)]
    worst = health.worst_boards(now, recent=recent).to_dict("records")
    return {"at": now.isoformat(), "sources": sources, "queues": queues, "worst_boards": worst}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dg.asset(key=SYNC_HEALTH, group_name="operations", kinds={"python", "sql"}, owners=OWNERS, deps=[CATALOG],
          description="How every source and queue is doing: per source its verdict (healthy, degraded, failing "
                      "and why), last success, success rate and median / p95 sync duration over 7 days, jobs "
                      "found, the newest posting's age, errors by kind, failing and retired boards; per queue "
                      "(pending search runs, due notifications and follow-ups) its depth and oldest age; a "
                      "table of the worst boards. Refreshed after syncs and every 30 minutes.")
def sync_health(context: dg.AssetExecutionContext, store: StoreResource) -> dg.MaterializeResult:
    report = health_report(store.store())
    metadata: dict[str, dg.MetadataValue] = {}
    for row in report["sources"]:
        name = row["source"]
        metadata[f"{name}_status"] = dg.MetadataValue.text(
            row["status"] + (": " + "; ".join(row["reasons"]) if row["reasons"] else ""))
        for key in ("success_rate_7d", "duration_p95_seconds", "newest_posting_age_hours"):
            if row[key] is not None:
                metadata[f"{name}_{key}"] = dg.MetadataValue.float(float(row[key]))
        metadata[f"{name}_jobs_found"] = dg.MetadataValue.int(row["jobs_found"])
        metadata[f"{name}_errors_7d"] = dg.MetadataValue.int(sum(row["errors_by_kind"].values()))
    for queue in report["queues"]:
        metadata[f"queue_{queue['queue']}_pending"] = dg.MetadataValue.int(queue["pending"])
        metadata[f"queue_{queue['queue']}_oldest_minutes"] = dg.MetadataValue.float(
            float(queue["oldest_pending_minutes"] or 0.0))
    failing = [r["source"] for r in report["sources"] if r["status"] == Health.FAILING]
    metadata["sources_failing"] = dg.MetadataValue.int(len(failing))
    metadata["sources_degraded"] = dg.MetadataValue.int(sum(r["status"] == Health.DEGRADED for r in report["sources"]))
    metadata["worst_boards"] = dg.MetadataValue.table(
        records=[dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in report["worst_boards"]],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in (
            ("source", "string"), ("board", "string"), ("syncs", "int"), ("failed", "int"),
            ("success_rate", "float"), ("last_status", "string"), ("last_error", "string"))]))
    if failing:
        context.log.warning(f"failing: {', '.join(failing)}")
    return dg.MaterializeResult(metadata=metadata)


def _cell(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value if not isinstance(value, str) else value[:300]
    return str(value)


operations_refresh = dg.define_asset_job(
    "operations_refresh", selection=dg.AssetSelection.assets(CATALOG, SYNC_HEALTH), config=console.RUN_CONFIG,
    description="Read the catalog's row counts and recompute sync_health (the store only).")

# reads and writes the local store only: on by default
operations_schedule = dg.ScheduleDefinition(
    name="operations_schedule", job=operations_refresh, cron_schedule="*/30 * * * *",
    execution_timezone="Europe/London", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refreshes the catalog and sync_health every 30 minutes, so a queue that ages or a source that "
                "stops syncing shows even when nothing else runs.")


@dg.sensor(name="sync_health_sensor", job=operations_refresh, minimum_interval_seconds=120,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Refreshes the catalog and sync_health after syncs end: one run per tick when a sync ended "
                       "since the last (run key: the ended syncs' count and newest end). Reads the local store only.")
def sync_health_sensor(context: dg.SensorEvaluationContext, store: StoreResource):
    with store.store().engine.connect() as conn:
        ended, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(syncs.c.finished_at))
                                     .where(syncs.c.finished_at.is_not(None))).one()
    # a sync that started first may end after a later one: the count moves whenever any sync ends
    key = f"{ended}@{newest}"
    if not ended or key == (context.cursor or ""):
        return dg.SkipReason("no sync ended since the last refresh")
    context.update_cursor(key)
    return dg.RunRequest(run_key=f"health:{key}", run_config=console.RUN_CONFIG)


defs = dg.Definitions(assets=[catalog, sync_health], jobs=[operations_refresh], schedules=[operations_schedule],
                      sensors=[sync_health_sensor])
