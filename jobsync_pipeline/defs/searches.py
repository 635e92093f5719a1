"""Saved searches in Dagster: the `search_run` job executes one queued search run; a sensor launches
pending runs (manual before cron), a schedule enqueues cron runs for active users, and a run-failure
sensor records a failed Dagster run on its search run. The queue itself is `store/searches.py`."""

import json
from datetime import timedelta

import dagster as dg
from pydantic import Field

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.defs.resources import LiveSitesResource, SearchPolicyResource, StoreResource
from jobsync_pipeline.sources.jobspy import JobSpyMissing
from jobsync_pipeline.store.live_sites import LiveSiteResult, search_live_sites
from jobsync_pipeline.store.searches import MANUAL, InvalidTransition, NotFound
from jobsync_pipeline.store.time import utcnow

SEARCH_RUN_TAG, USER_TAG = "jobsync/search_run_id", "jobsync/user"
# the QueuedRunCoordinator launches higher priorities first: what a user is waiting for, then the lanes'
# syncs (0), then the clock's searches, so a tick of hundreds of cron runs never holds a sync back
PRIORITY = {MANUAL: 10, "cron": -1}
PREVIEW_ROWS = 10


class SearchRunConfig(dg.Config):
    search_run_id: int = Field(description="The search_runs row this run executes (the sensor and "
                                           "`jobsync search start --wait` fill it in).")


@dg.asset(key_prefix="searches", group_name="searches", kinds={"python", "sql"}, owners=["team:search"],
          description="The matches of one queued search run over the catalog (canonical, open jobs; full text "
                      "in the database), ranked and stored in search_run_results; its search_runs row goes "
                      "running → success or failed. A search naming live sites first searches them through "
                      "JobSpy and applies their postings as `jobspy` boards, so they are among the matches. "
                      "A cancelled run is not executed.")
def search_results(context: dg.AssetExecutionContext, config: SearchRunConfig, store: StoreResource,
                   search_policy: SearchPolicyResource, live_sites: LiveSitesResource) -> dg.MaterializeResult:
    searches = store.store().searches
    run_id = config.search_run_id
    try:
        run = searches.start(run_id, dagster_run_id=context.run.run_id)
    except InvalidTransition as exc:  # cancelled (or done) before it started: nothing to execute
        context.log.warning(str(exc))
        return dg.MaterializeResult(metadata={"search_run_id": run_id, "executed": False, "reason": str(exc)})
    started = utcnow()
    live: list[LiveSiteResult] = []
    try:
        parameters = SearchParameters.model_validate(run.parameters)
        if parameters.live_sites:  # first, so the live postings are in the catalog the search reads
            live = _search_live_sites(context, store, live_sites, parameters)
        matches = searches.execute(parameters, limit=search_policy.max_results,
                                   count_limit=search_policy.count_limit)
    except JobSpyMissing as exc:  # one clear line, not a traceback: the deployment lacks the extra
        searches.fail(run_id, str(exc))
        raise dg.Failure(description=str(exc)) from None
    except Exception as exc:
        searches.fail(run_id, f"the search failed: {exc}")
        raise
    try:
        searches.succeed(run_id, *matches)
    except InvalidTransition as exc:  # cancelled while it ran: it stays cancelled, its results unkept
        context.log.warning(str(exc))
        return dg.MaterializeResult(metadata={"search_run_id": run_id, "executed": False, "reason": str(exc),
                                              **live_metadata(live)})
    preview = searches.results(run.user, run_id, limit=PREVIEW_ROWS)
    return dg.MaterializeResult(metadata={
        **live_metadata(live),
        "search_run_id": run_id, "user": run.user, "source": run.source, "jobs_found": matches.jobs_found,
        "jobs_found_capped": matches.capped, "results_kept": len(matches.results),
        "duration_seconds": round((utcnow() - started).total_seconds(), 3),
        "top_matches": dg.TableMetadataValue(
            records=[dg.TableRecord({"rank": r["rank"], "title": r["title"], "company": r["company"],
                                     "location": r["location"] or "", "salary": r["salary"] or "",
                                     "why": "; ".join(r["why"])}) for r in preview],
            schema=dg.TableSchema(columns=[dg.TableColumn(name, type_) for name, type_ in (
                ("rank", "int"), ("title", "string"), ("company", "string"), ("location", "string"),
                ("salary", "string"), ("why", "string"))])),
    })


def _search_live_sites(context: dg.AssetExecutionContext, store: StoreResource, live_sites: LiveSitesResource,
                       parameters: SearchParameters) -> list[LiveSiteResult]:
    """The search's live sites searched and applied (`store/live_sites.py`), each site's outcome logged; a
    failed site is its failed syncs row and a warning, and the search still runs over the catalog."""
    outcomes = search_live_sites(
        store.store(), parameters, run_id=context.run.run_id, scrape=live_sites.scraper(),
        results_wanted=live_sites.results_wanted_per_site, max_age=timedelta(days=live_sites.max_age_days),
        country_indeed=live_sites.country_indeed)
    for outcome in outcomes:
        counts = ", ".join(f"{outcome.counts.get(name, 0)} {name}" for name in ("found", "new", "changed", "bad"))
        if not outcome.applied:
            context.log.warning(f"jobspy/{outcome.site}: failed, nothing applied: {outcome.error}")
        elif outcome.error:
            context.log.warning(f"jobspy/{outcome.site}: {counts} (some calls failed: {outcome.error})")
        else:
            context.log.info(f"jobspy/{outcome.site}: {counts}")
    return outcomes


def live_metadata(outcomes: list[LiveSiteResult]) -> dict:
    """Each live site's numbers (plain ints, so the UI plots them) and the errors of those that failed."""
    if not outcomes:
        return {}
    metadata: dict = {"live_sites_failed": sum(not outcome.applied for outcome in outcomes)}
    for outcome in outcomes:
        for name in ("found", "new", "bad"):
            metadata[f"live_{outcome.site}_{name}"] = int(outcome.counts.get(name, 0))
    errors = {outcome.site: outcome.error for outcome in outcomes if outcome.error}
    if errors:
        metadata["live_errors"] = dg.MetadataValue.json(errors)
    return metadata


# in-process: the one step runs in the run's own process; a search is a fraction of a second of SQL,
# and a second Python process per run doubled what a tick of 300 runs cost (benchmarks/README.md)
# never re-launched by the instance's run retries: a search run has its own attempts (a lost one goes back to
# pending), and failed_search_runs_sensor ends the search run of a failed Dagster run
search_run_job = dg.define_asset_job("search_run", selection=[search_results], executor_def=dg.in_process_executor,
                                     tags={"dagster/max_retries": "0"},
                                     description="Executes one queued search run (its id in the run config).")


def run_config(search_run_id: int) -> dict:
    return {"ops": {"searches__search_results": {"config": {"search_run_id": search_run_id}}}}


def run_tags(search_run_id: int, user: str, source: str) -> dict[str, str]:
    return {SEARCH_RUN_TAG: str(search_run_id), USER_TAG: user, "jobsync/search_source": source,
            "dagster/priority": str(PRIORITY.get(source, 0))}


@dg.sensor(job=search_run_job, minimum_interval_seconds=5, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches a search_run for each pending search run, manual before cron (run priority "
                       "10 over -1; lane syncs run at 0), with the search run's id as the run key so a row never "
                       "launches twice (a retry after a stuck attempt is keyed `ID.ATTEMPT`); its cursor, the "
                       "highest id launched per source, keeps a backlog of launched runs from hiding new ones. "
                       "First returns runs stuck in `running` to pending or fails them. Reads and writes the local "
                       "store only.")
def search_run_sensor(context: dg.SensorEvaluationContext, store: StoreResource,
                      search_policy: SearchPolicyResource):
    searches = store.store().searches
    stuck_after = timedelta(minutes=search_policy.stuck_after_minutes)
    swept = searches.sweep(stuck_after)
    if swept["retried"] or swept["failed"]:
        context.log.warning(f"stuck search runs: retried {swept['retried']}, failed {swept['failed']}")
    # the cursor: the highest search run id launched per source. Launched runs stay `pending` until
    # their step starts; without it, a queue of them would fill every tick's page and hide new rows.
    launched = json.loads(context.cursor) if context.cursor else {}
    pending = searches.pending(after=launched, waiting_since=utcnow() - stuck_after)
    for run in pending:
        yield dg.RunRequest(run_key=str(run.id) if run.attempts == 0 else f"{run.id}.{run.attempts + 1}",
                            run_config=run_config(run.id), tags=run_tags(run.id, run.user, run.source))
        launched[run.source] = max(launched.get(run.source, 0), run.id)
    context.update_cursor(json.dumps(launched, sort_keys=True))
    if not pending:
        yield dg.SkipReason("no new pending search runs")


@dg.schedule(cron_schedule=["0 8,10,14,16,22 * * *", "45 16 * * *"], execution_timezone="Europe/London",
             job=search_run_job, default_status=dg.DefaultScheduleStatus.RUNNING,
             description="At 08:00, 10:00, 14:00, 16:00, 16:45 and 22:00 London time, enqueues one cron search "
                         "run per saved search of each user seen within search_policy.active_user_days, except "
                         "saved searches with a run pending or running; search_run_sensor launches them. Reads "
                         "and writes the local store only.")
def search_schedule(context: dg.ScheduleEvaluationContext, store: StoreResource,
                    search_policy: SearchPolicyResource):
    now = context.scheduled_execution_time or utcnow()
    created = store.store().searches.enqueue_cron(now - timedelta(days=search_policy.active_user_days), now=now)
    return dg.SkipReason(f"enqueued {len(created)} cron search run(s); search_run_sensor launches them")


@dg.run_failure_sensor(monitored_jobs=[search_run_job], name="failed_search_runs_sensor",
                       default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
                       description="Records a failed search_run Dagster run on its search run (failed, with the "
                                   "reason), so no search shows `running` that nothing is doing.")
def failed_search_runs_sensor(context: dg.RunFailureSensorContext, store: StoreResource) -> None:
    reason = (context.failure_event.message or "its Dagster run failed").splitlines()[0][:500]
    _end_search_run(context, lambda searches, run_id: searches.fail(
        run_id, f"its Dagster run {context.dagster_run.run_id} failed: {reason}"), store)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, monitored_jobs=[search_run_job],
                      name="canceled_search_runs_sensor", default_status=dg.DefaultSensorStatus.RUNNING,
                      minimum_interval_seconds=30,
                      description="Records a search_run Dagster run terminated in Dagster (the UI, the API) on its "
                                  "search run (cancelled), so it is neither shown running nor retried by the sweeper.")
def canceled_search_runs_sensor(context: dg.RunStatusSensorContext, store: StoreResource) -> None:
    _end_search_run(context, lambda searches, run_id: searches.cancel_by_id(
        run_id, f"its Dagster run {context.dagster_run.run_id} was terminated"), store)


def _end_search_run(context: dg.RunStatusSensorContext, end, store: StoreResource) -> None:
    """`end(searches, search_run_id)` for the search run a Dagster run executed, if it has not ended."""
    run_id = context.dagster_run.tags.get(SEARCH_RUN_TAG)
    if not run_id:
        return
    try:
        end(store.store().searches, int(run_id))
    except (InvalidTransition, NotFound) as exc:  # already ended (by its step, or cancelled by its user)
        context.log.info(str(exc))


defs = dg.Definitions(assets=[search_results], jobs=[search_run_job], sensors=[search_run_sensor,
                      failed_search_runs_sensor, canceled_search_runs_sensor], schedules=[search_schedule])
