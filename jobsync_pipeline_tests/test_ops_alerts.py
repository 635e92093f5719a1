"""Operator alerts: the conditions (core/ops_alerts.py), their deduplication and recovery in the store on
SQLite and PostgreSQL (store/ops_alerts.py), and the sensor sending them to a local apprise hook."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import dagster as dg

from jobsync_pipeline.core.health import QueueFigures, SourceFigures
from jobsync_pipeline.core.ops_alerts import Condition, queue_conditions, source_conditions
from jobsync_pipeline.core.status import SyncStatus
from jobsync_pipeline.defs.ops_alerts import OpsAlertsResource, ops_alerts_sensor
from jobsync_pipeline.defs.resources import StoreResource
from jobsync_pipeline.store.ops_alerts import OpsAlertStore
from jobsync_pipeline.store.repo import Store
from jobsync_pipeline_tests.delivery_hook import Hook

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)


def test_conditions_from_figures():
    hour = [SourceFigures("lever", timedelta(minutes=15), boards=5, syncs=10, successes=5),
            SourceFigures("greenhouse", timedelta(minutes=15), boards=5, syncs=2, successes=0)]  # too few to say
    week = [SourceFigures("lever", timedelta(minutes=15), boards=5, last_success=NOW - 20 * MINUTE),
            SourceFigures("greenhouse", timedelta(minutes=15), boards=5, last_success=NOW - 31 * MINUTE),
            SourceFigures("remoteok", timedelta(minutes=15), boards=0, last_success=NOW - 600 * MINUTE)]
    found = {c.key: c.message for c in source_conditions(hour, week, NOW)}
    assert found == {"success_rate:lever": "lever: 50% of 10 syncs succeeded in the last hour (below 80%)",
                     "stale:greenhouse": "greenhouse is stale: no successful sync for 0.5 h (expected within 0.5 h)"}
    queues = [QueueFigures("search_runs", 3, NOW - 45 * MINUTE), QueueFigures("notifications", 1, NOW - 5 * MINUTE),
              QueueFigures("followups", 0, None)]
    assert [c.key for c in queue_conditions(queues, NOW)] == ["queue:search_runs"]


def test_at_most_one_alert_per_condition_an_hour_and_one_recovery(store_url):
    alerts = OpsAlertStore(Store(store_url).engine)
    stale = Condition("stale:lever", "lever is stale")
    assert [(a.kind, a.key) for a in alerts.transition([stale], now=NOW)] == [("alert", "stale:lever")]
    assert alerts.transition([stale], now=NOW + 10 * MINUTE) == []
    assert alerts.transition([stale], now=NOW + 59 * MINUTE) == []
    assert [a.kind for a in alerts.transition([stale], now=NOW + 61 * MINUTE)] == ["repeat"]
    assert alerts.firing() == ["stale:lever"]
    (recovered,) = alerts.transition([], now=NOW + 70 * MINUTE)
    assert (recovered.kind, recovered.message) == ("recovered", "recovered: lever is stale")
    assert alerts.transition([], now=NOW + 80 * MINUTE) == [] and alerts.firing() == []
    assert [a.kind for a in alerts.transition([stale], now=NOW + 90 * MINUTE)] == ["alert"]  # again: announced


def test_the_sensor_sends_alerts_and_recoveries_to_the_operators_channels(store_url, monkeypatch):
    store = Store(store_url)
    received: list[dict] = []
    monkeypatch.setenv("JOBSYNC_NOTIFY_ALLOW_HOSTS", "127.0.0.1")
    store.boards.add("greenhouse", ["acme"], "cli")
    for _ in range(3):
        store.record_sync("greenhouse", "acme", SyncStatus.FAILED, run_id="r", error="GET … answered 503")
    store.record_sync("company_files", "big", SyncStatus.GUARDED, run_id="r", error="would expire 90 of 100 jobs")
    with Hook(answer=lambda body: received.append(json.loads(body)) or 200) as hook, \
            dg.instance_for_test() as instance:
        resources = {"store": StoreResource(url=store_url), "ops_alerts": OpsAlertsResource(channels=hook.url)}
        result = ops_alerts_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert "announced" in result.skip_message
        keys = sorted(m["message"].split(":")[0] for m in received)
        assert keys == ["company_files/big", "greenhouse"], received
        assert all(m["title"] == "jobsync alert" for m in received)
        received.clear()
        ops_alerts_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert received == []  # the same conditions within the hour: nothing sent twice
        store.record_sync("company_files", "big", SyncStatus.SUCCESS, run_id="r2")  # the board applied again
        ops_alerts_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert [(m["title"], m["message"]) for m in received] == [
            ("jobsync recovered", "recovered: company_files/big: the expiry guard held its diff back: would expire "
                                  "90 of 100 jobs")]


def test_without_channels_alerts_are_only_logged(store_url, monkeypatch):
    monkeypatch.delenv("JOBSYNC_OPS_CHANNELS", raising=False)
    store = Store(store_url)
    store.record_sync("company_files", "big", SyncStatus.GUARDED, run_id="r", error="would expire 90 of 100 jobs")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={
            "store": StoreResource(url=store_url), "ops_alerts": OpsAlertsResource()})
        result = ops_alerts_sensor(context)
    assert result.skip_message.startswith("1 condition(s) holding; 1 announced")
    assert OpsAlertStore(store.engine).firing() == ["expiry_guard:company_files/big"]


def test_a_job_whose_latest_run_failed_is_a_condition_until_a_run_of_it_succeeds():
    from jobsync_pipeline.defs.ops_alerts import failed_jobs
    from jobsync_pipeline.store.time import utcnow

    fail = {"now": True}

    @dg.asset
    def flaky():
        if fail["now"]:
            raise RuntimeError("boom")

    job = dg.Definitions(assets=[flaky], jobs=[dg.define_asset_job("flaky_job")]).resolve_job_def("flaky_job")
    with dg.instance_for_test() as instance:
        failed = job.execute_in_process(instance=instance, raise_on_error=False)
        assert failed_jobs(instance, utcnow()) == {"flaky_job": f"run {failed.run_id} (see it in the UI: Runs)"}
        fail["now"] = False
        job.execute_in_process(instance=instance)
        assert failed_jobs(instance, utcnow()) == {}
