"""defs/freshness.py: each lane's freshness check, in the cadence of its schedule, going overdue and fresh
again against a fake clock; the catalog's; the sensor that evaluates them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from jobsync_pipeline.definitions import defs
from jobsync_pipeline.defs.freshness import CATALOG_CHECKS, LANE_CHECKS, freshness_sensor
from jobsync_pipeline.defs.operations import CATALOG
from jobsync_pipeline.defs.source_specs import SOURCES_BY_NAME

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)


def check_for(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    (found,) = [c for c in [*LANE_CHECKS, *CATALOG_CHECKS] if key in {k.asset_key for k in c.check_keys}]
    return found


def evaluate(instance, key: dg.AssetKey, at: datetime) -> bool:
    check = check_for(key)
    job = dg.Definitions(assets=[dg.AssetSpec(key)], asset_checks=[check], jobs=[
        dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(check))]).resolve_job_def("freshness")
    with freeze_time(at):
        result = job.execute_in_process(instance=instance)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation.passed


def materialize_at(instance, key: dg.AssetKey, at: datetime, partition: str | None = None) -> None:
    with freeze_time(at):
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


@pytest.mark.parametrize("source, interval", [("greenhouse", timedelta(minutes=15)), ("himalayas", timedelta(hours=1)),
                                              ("site_crawl", timedelta(days=1)), ("company_files", timedelta(days=1))])
def test_a_lane_is_overdue_after_twice_its_interval_without_an_applied_board(source, interval):
    assert SOURCES_BY_NAME[source].interval == interval
    key = dg.AssetKey([source, "job_diff"])
    with dg.instance_for_test() as instance:
        assert not evaluate(instance, key, T0)  # never applied
        materialize_at(instance, key, T0, partition="some-board")
        assert evaluate(instance, key, T0 + interval)
        assert evaluate(instance, key, T0 + 2 * interval - timedelta(seconds=1))
        assert not evaluate(instance, key, T0 + 2 * interval + timedelta(seconds=1))  # stale
        materialize_at(instance, key, T0 + 3 * interval, partition="another-board")  # any board applied
        assert evaluate(instance, key, T0 + 3 * interval + timedelta(minutes=1))  # fresh again


def test_the_catalog_is_overdue_after_an_hour_without_a_refresh():
    with dg.instance_for_test() as instance:
        materialize_at(instance, CATALOG, T0)
        assert evaluate(instance, CATALOG, T0 + timedelta(minutes=59))
        assert not evaluate(instance, CATALOG, T0 + timedelta(minutes=61))


def test_every_lane_and_the_catalog_have_a_check_and_the_sensor_evaluates_them_all():
    keys = {k.asset_key.to_user_string() for c in [*LANE_CHECKS, *CATALOG_CHECKS] for k in c.check_keys}
    assert keys == {f"{name}/job_diff" for name in SOURCES_BY_NAME} | {"catalog"}
    sensor = defs.resolve_sensor_def("freshness_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert freshness_sensor.name == "freshness_sensor"
