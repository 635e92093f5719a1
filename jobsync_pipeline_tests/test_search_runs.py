"""The search runs in Dagster (defs/searches.py): the sensor, the schedule, the job, the failure sensor."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import takewhile
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._utils.schedules import schedule_execution_time_iterator  # the daemon's own tick arithmetic

from jobsync_pipeline.core.search import SearchParameters
from jobsync_pipeline.defs.resources import LiveSitesResource, SearchPolicyResource, StoreResource
from jobsync_pipeline.defs.searches import (canceled_search_runs_sensor, failed_search_runs_sensor, run_config,
                                            search_results, search_run_sensor, search_schedule)
from jobsync_pipeline_tests.test_searches import ANN, BOB, T0, catalog, users

LONDON = ZoneInfo("Europe/London")


def resources(store_url: str) -> dict:
    return {"store": StoreResource(url=store_url), "search_policy": SearchPolicyResource(),
            "live_sites": LiveSitesResource()}


def requests(store_url: str) -> list[dg.RunRequest]:
    with dg.build_sensor_context(resources=resources(store_url)) as context:
        return [r for r in search_run_sensor(context) if isinstance(r, dg.RunRequest)]


def test_the_sensor_launches_pending_runs_manual_first_keyed_by_run_id(store_url):
    searches = users(catalog(store_url))
    a = searches.add_search(ANN, SearchParameters(remote=True))
    b = searches.add_search(BOB, SearchParameters(keywords="python"))
    c = searches.add_search(BOB, SearchParameters(categories=("sales",)))
    cron = searches.enqueue_cron(active_since=T0 - timedelta(days=30))  # runs 1, 2, 3
    searches.cancel(BOB, cron[2])  # a cancelled run is never launched
    manual, _ = searches.enqueue(BOB, c.id)
    launched = requests(store_url)
    assert [r.run_key for r in launched] == [str(manual.id), str(cron[0]), str(cron[1])]
    assert [r.tags["dagster/priority"] for r in launched] == ["10", "-1", "-1"]
    assert launched[0].tags["jobsync/search_run_id"] == str(manual.id) and launched[0].tags["jobsync/user"] == BOB
    assert launched[0].run_config == run_config(manual.id)
    assert {a.id, b.id} == {1, 2}


def test_the_cursor_keeps_a_backlog_of_launched_runs_from_hiding_new_ones(store_url):
    searches = users(catalog(store_url))
    saved = [searches.add_search(ANN, SearchParameters(keywords=f"python{i}")) for i in range(120)]
    backlog = searches.enqueue_cron(active_since=T0 - timedelta(days=30))  # 120 pending cron runs
    with dg.build_sensor_context(resources=resources(store_url)) as context:
        first = [r.run_key for r in search_run_sensor(context) if isinstance(r, dg.RunRequest)]
        assert first == [str(i) for i in backlog[:100]]  # one page; none of them has started yet
        manual, _ = searches.enqueue(ANN, saved[0].id)  # its cron run is pending: that one comes back
        late = searches.add_search(ANN, SearchParameters(remote=True))
        new, _ = searches.enqueue(ANN, late.id)
        second = [r.run_key for r in search_run_sensor(context) if isinstance(r, dg.RunRequest)]
        assert second == [str(new.id)] + [str(i) for i in backlog[100:]]  # past the launched backlog
        assert manual.id == backlog[0]
        skipped = list(search_run_sensor(context))
        assert len(skipped) == 1 and isinstance(skipped[0], dg.SkipReason)
    # a run pending for longer than stuck_after_minutes (its launch lost) is asked for again
    waiting = searches.pending(after={"cron": backlog[-1], "manual": new.id},
                               waiting_since=datetime.now(timezone.utc) + timedelta(minutes=1))
    assert len(waiting) == 100 and waiting[0].id == new.id


def test_a_retried_run_gets_a_run_key_of_its_own(store_url):
    searches = users(catalog(store_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(remote=True)).id)
    searches.start(run.id, now=datetime.now(timezone.utc) - timedelta(hours=2))  # its process died
    assert [r.run_key for r in requests(store_url)] == [f"{run.id}.2"]  # the sensor swept it back first
    assert searches.run(ANN, run.id).attempts == 1


def test_the_schedule_ticks_at_london_times_on_both_sides_of_each_clock_change():
    def london_ticks(day: datetime) -> list[str]:
        start = day.replace(tzinfo=LONDON).timestamp()
        ticks = schedule_execution_time_iterator(start, search_schedule.cron_schedule,
                                                 search_schedule.execution_timezone)
        return [t.astimezone(LONDON).strftime("%H:%M") for t in takewhile(lambda t: t.timestamp() < start + 86400, ticks)]

    expected = ["08:00", "10:00", "14:00", "16:00", "16:45", "22:00"]
    for day in (datetime(2026, 3, 28), datetime(2026, 3, 29), datetime(2026, 3, 30),  # GMT → BST
                datetime(2026, 10, 24), datetime(2026, 10, 25), datetime(2026, 10, 26)):  # BST → GMT
        assert london_ticks(day) == expected, day
    # 08:00 in London is 08:00 UTC in winter and 07:00 UTC in summer
    winter = next(iter(schedule_execution_time_iterator(datetime(2026, 3, 28, tzinfo=LONDON).timestamp(),
                                                        search_schedule.cron_schedule, "Europe/London")))
    summer = next(iter(schedule_execution_time_iterator(datetime(2026, 3, 30, tzinfo=LONDON).timestamp(),
                                                        search_schedule.cron_schedule, "Europe/London")))
    assert (winter.astimezone(timezone.utc).hour, summer.astimezone(timezone.utc).hour) == (8, 7)


def test_the_schedule_enqueues_cron_runs_for_active_users(sqlite_url):
    searches = users(catalog(sqlite_url))
    searches.add_search(ANN, SearchParameters(remote=True))
    searches.add_search(BOB, SearchParameters(keywords="python"))
    searches.user(BOB, seen=T0 - timedelta(days=60))
    tick = datetime(2026, 12, 1, 8, 0, tzinfo=LONDON)
    searches.user(ANN, seen=tick - timedelta(days=1))
    with dg.build_schedule_context(scheduled_execution_time=tick, resources=resources(sqlite_url)) as context:
        result = search_schedule(context)
    assert isinstance(result, dg.SkipReason) and "enqueued 1 cron search run" in result.skip_message
    assert [(r.user, r.source) for r in searches.pending()] == [(ANN, "cron")]


def test_the_job_executes_a_run_and_shows_its_matches(sqlite_url):
    searches = users(catalog(sqlite_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(keywords="python")).id)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([search_results], instance=instance, resources=resources(sqlite_url),
                                run_config=run_config(run.id))
    assert result.success
    (materialization,) = result.asset_materializations_for_node("searches__search_results")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["jobs_found"] == 3 and metadata["search_run_id"] == run.id and metadata["user"] == ANN
    assert [r.data["rank"] for r in metadata["top_matches"].records] == [1, 2, 3]
    done = searches.run(ANN, run.id)
    assert (done.status, done.jobs_found, done.attempts) == ("success", 3, 1)
    assert done.dagster_run_id == result.run_id


def test_a_cancelled_run_is_not_executed(sqlite_url):
    searches = users(catalog(sqlite_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(keywords="python")).id)
    searches.cancel(ANN, run.id)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([search_results], instance=instance, resources=resources(sqlite_url),
                                run_config=run_config(run.id))
    assert result.success
    (materialization,) = result.asset_materializations_for_node("searches__search_results")
    assert materialization.metadata["executed"].value is False
    assert searches.run(ANN, run.id).status == "cancelled" and searches.results(ANN, run.id) == []


@dg.asset(name="search_results", key_prefix="searches")
def breaks_midway() -> None:
    raise RuntimeError("the step blew up")


def test_a_failed_dagster_run_fails_its_search_run(sqlite_url):
    searches = users(catalog(sqlite_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(keywords="python")).id)
    searches.start(run.id)
    with dg.instance_for_test() as instance:
        result = dg.materialize([breaks_midway], instance=instance, raise_on_error=False,
                                tags={"jobsync/search_run_id": str(run.id)})
        context = dg.build_run_status_sensor_context(
            sensor_name="failed_search_runs_sensor", dagster_instance=instance,
            dagster_event=result.get_run_failure_event(), dagster_run=result.dagster_run,
            resources={"store": StoreResource(url=sqlite_url)}).for_run_failure()
        failed_search_runs_sensor(context)
    ended = searches.run(ANN, run.id)
    assert ended.status == "failed" and f"its Dagster run {result.run_id} failed" in ended.error
    # a run that already ended is left as it is
    with dg.instance_for_test() as instance:
        again = dg.materialize([breaks_midway], instance=instance, raise_on_error=False,
                               tags={"jobsync/search_run_id": str(run.id)})
        failed_search_runs_sensor(dg.build_run_status_sensor_context(
            sensor_name="failed_search_runs_sensor", dagster_instance=instance,
            dagster_event=again.get_run_failure_event(), dagster_run=again.dagster_run,
            resources={"store": StoreResource(url=sqlite_url)}).for_run_failure())
    assert searches.run(ANN, run.id).error == ended.error


@dg.asset(name="search_results", key_prefix="searches")
def is_terminated() -> None:
    pass


def test_a_dagster_run_terminated_in_dagster_cancels_its_search_run(sqlite_url):
    searches = users(catalog(sqlite_url))
    run, _ = searches.enqueue(ANN, searches.add_search(ANN, SearchParameters(keywords="python")).id)
    searches.start(run.id)
    with dg.instance_for_test() as instance:
        result = dg.materialize([is_terminated], instance=instance, tags={"jobsync/search_run_id": str(run.id)})
        instance.report_run_canceled(result.dagster_run, "terminated from the UI")
        (record,) = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_CANCELED).records

        def sense():
            canceled_search_runs_sensor(dg.build_run_status_sensor_context(
                sensor_name="canceled_search_runs_sensor", dagster_instance=instance,
                dagster_event=record.event_log_entry.dagster_event, dagster_run=result.dagster_run,
                resources={"store": StoreResource(url=sqlite_url)}))

        sense()
        ended = searches.run(ANN, run.id)
        assert ended.status == "cancelled" and f"its Dagster run {result.run_id} was terminated" in ended.error
        sense()  # already ended: left as it is
    assert searches.run(ANN, run.id).completed_at == ended.completed_at
    assert searches.sweep(timedelta(0))["retried"] == []  # and never run again by the sweeper
