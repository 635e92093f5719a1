"""When a digest may go: cadence, quiet hours, the days the clocks change, and retry backoff.

2026 clock changes used below: Europe/London goes forward at 01:00 UTC on 29 March (01:00-02:00 local
does not exist) and back at 01:00 UTC on 25 October (01:00-02:00 local happens twice);
America/New_York forward at 07:00 UTC on 8 March (02:00-03:00 skipped), back at 06:00 UTC on 1 November
(01:00-02:00 twice).
"""
from datetime import UTC, datetime, time, timedelta, timezone
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jobsync_pipeline.core.digest import (DIGESTS, DigestSettings, in_quiet_hours, next_delivery,
                                          parse_quiet_hours, retry_at)

LONDON, NEW_YORK = "Europe/London", "America/New_York"


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def deliver(ready_at, **settings):
    delivery = next_delivery(DigestSettings(**settings), ready_at)
    assert delivery.tzinfo is timezone.utc
    assert delivery >= ready_at
    return delivery


# --- the settings


def test_settings_defaults_and_shape():
    defaults = DigestSettings()
    assert (defaults.digest, defaults.digest_hour, defaults.quiet_hours, defaults.timezone) == (
        "daily", 8, None, "Europe/London")
    assert DIGESTS == ("asap", "hourly", "daily") == get_args(DigestSettings.model_fields["digest"].annotation)
    assert all(field.description for field in DigestSettings.model_fields.values())
    with pytest.raises(ValidationError):
        defaults.digest = "asap"  # frozen
    with pytest.raises(ValidationError, match="extra"):
        DigestSettings(digest_days=2)


@pytest.mark.parametrize("values", [{"digest": "weekly"}, {"digest_hour": 24}, {"digest_hour": -1}])
def test_settings_out_of_range_are_refused(values):
    with pytest.raises(ValidationError):
        DigestSettings(**values)


@pytest.mark.parametrize(("given", "stored"), [("22:00-07:00", "22:00-07:00"), ("7:05-9:30", "07:05-09:30"),
                                               (" 22:00 - 07:00 ", "22:00-07:00"), ("00:00-23:59", "00:00-23:59")])
def test_quiet_hours_are_normalized(given, stored):
    assert DigestSettings(quiet_hours=given).quiet_hours == stored
    start, end = parse_quiet_hours(stored)
    assert f"{start:%H:%M}-{end:%H:%M}" == stored


def test_parse_quiet_hours_gives_times():
    assert parse_quiet_hours("22:00-07:30") == (time(22), time(7, 30))


@pytest.mark.parametrize(("text", "message"), [
    ("25:00-07:00", "quiet hours '25:00-07:00': 25:00 is not a time of day (00:00 to 23:59)"),
    ("22:00-07:60", "quiet hours '22:00-07:60': 07:60 is not a time of day (00:00 to 23:59)"),
    ("24:00-07:00", "24:00 is not a time of day"),
    ("22-07", "quiet hours '22-07' are not HH:MM-HH:MM (such as 22:00-07:00)"),
    ("22:00", "are not HH:MM-HH:MM"),
    ("22:00 07:00", "are not HH:MM-HH:MM"),
    ("", "are not HH:MM-HH:MM"),
    ("22:00-22:00", "quiet hours '22:00-22:00' start and end at the same time; give a window such as 22:00-07:00"),
    ("7:00-07:00", "start and end at the same time"),
])
def test_bad_quiet_hours_say_what_is_wrong_in_one_line(text, message):
    with pytest.raises(ValueError) as raised:
        parse_quiet_hours(text)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ValidationError, match="quiet_hours") as raised:
        DigestSettings(quiet_hours=text)
    assert message in str(raised.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "London", "", "../etc/passwd"])
def test_bad_timezone_is_named(name):
    with pytest.raises(ValidationError, match="timezone") as raised:
        DigestSettings(timezone=name)
    assert f"{name!r} is not a time zone" in str(raised.value)


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="ready_at must be timezone-aware"):
        next_delivery(DigestSettings(), datetime(2026, 1, 15, 9))
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        in_quiet_hours(DigestSettings(quiet_hours="22:00-07:00"), datetime(2026, 1, 15, 9))


# --- cadence


def test_asap_goes_when_ready():
    assert deliver(utc(2026, 1, 15, 9, 17, 3, 5), digest="asap") == utc(2026, 1, 15, 9, 17, 3, 5)
    # an aware instant in another zone comes back as the same instant, in UTC
    paris = datetime(2026, 1, 15, 10, 17, tzinfo=ZoneInfo("Europe/Paris"))
    assert deliver(paris, digest="asap") == utc(2026, 1, 15, 9, 17)


@pytest.mark.parametrize(("ready_at", "zone", "expected"), [
    (utc(2026, 1, 15, 10, 20), LONDON, utc(2026, 1, 15, 11)),
    (utc(2026, 1, 15, 10), LONDON, utc(2026, 1, 15, 10)),  # on the hour stays
    (utc(2026, 1, 15, 10, 0, 0, 1), LONDON, utc(2026, 1, 15, 11)),
    (utc(2026, 1, 15, 23, 59), LONDON, utc(2026, 1, 16)),
    (utc(2026, 7, 15, 10, 20), LONDON, utc(2026, 7, 15, 11)),  # 11:20 BST -> 12:00 BST
    (utc(2026, 1, 15, 10, 20), "Asia/Kolkata", utc(2026, 1, 15, 10, 30)),  # 15:50 IST -> 16:00 IST: local hours
])
def test_hourly_goes_at_the_next_local_top_of_the_hour(ready_at, zone, expected):
    assert deliver(ready_at, digest="hourly", timezone=zone) == expected


@pytest.mark.parametrize(("ready_at", "zone", "expected"), [
    (utc(2026, 1, 15, 7), LONDON, utc(2026, 1, 15, 8)),
    (utc(2026, 1, 15, 8), LONDON, utc(2026, 1, 15, 8)),  # on the hour stays
    (utc(2026, 1, 15, 8, 0, 1), LONDON, utc(2026, 1, 16, 8)),
    (utc(2026, 7, 15, 1), LONDON, utc(2026, 7, 15, 7)),  # 08:00 BST
    (utc(2026, 1, 15, 9), NEW_YORK, utc(2026, 1, 15, 13)),  # 04:00 EST -> 08:00 EST
    (utc(2026, 1, 15, 3), NEW_YORK, utc(2026, 1, 15, 13)),  # 22:00 EST the day before: local dates count
])
def test_daily_goes_at_the_next_local_digest_hour(ready_at, zone, expected):
    assert deliver(ready_at, timezone=zone) == expected


def test_daily_at_another_hour():
    assert deliver(utc(2026, 1, 15, 19), digest_hour=18) == utc(2026, 1, 16, 18)
    assert deliver(utc(2026, 1, 15, 23, 30), digest_hour=0) == utc(2026, 1, 16)


# --- quiet hours


@pytest.mark.parametrize(("ready_at", "quiet"), [
    (utc(2026, 1, 15, 11, 59), False), (utc(2026, 1, 15, 12), True), (utc(2026, 1, 15, 13, 59, 59), True),
    (utc(2026, 1, 15, 14), False),
])
def test_in_quiet_hours_within_a_day(ready_at, quiet):
    assert in_quiet_hours(DigestSettings(quiet_hours="12:00-14:00"), ready_at) is quiet


@pytest.mark.parametrize(("ready_at", "quiet"), [
    (utc(2026, 1, 15, 21, 59), False), (utc(2026, 1, 15, 22), True), (utc(2026, 1, 15, 23, 59), True),
    (utc(2026, 1, 16), True), (utc(2026, 1, 16, 6, 59), True), (utc(2026, 1, 16, 7), False),
    (utc(2026, 1, 16, 12), False),
])
def test_in_quiet_hours_across_midnight(ready_at, quiet):
    assert in_quiet_hours(DigestSettings(quiet_hours="22:00-07:00"), ready_at) is quiet


def test_quiet_hours_are_local_time():
    settings = DigestSettings(quiet_hours="22:00-07:00", timezone=NEW_YORK)
    assert not in_quiet_hours(settings, utc(2026, 1, 15, 23))  # 18:00 EST
    assert in_quiet_hours(settings, utc(2026, 1, 16, 3))  # 22:00 EST
    assert not in_quiet_hours(DigestSettings(), utc(2026, 1, 16, 3))  # none set


@pytest.mark.parametrize(("ready_at", "expected"), [
    (utc(2026, 1, 15, 11, 59), utc(2026, 1, 15, 11, 59)),  # before: as ready
    (utc(2026, 1, 15, 12), utc(2026, 1, 15, 14)),  # start included
    (utc(2026, 1, 15, 13, 30), utc(2026, 1, 15, 14)),
    (utc(2026, 1, 15, 14), utc(2026, 1, 15, 14)),  # end not included
    (utc(2026, 1, 15, 16), utc(2026, 1, 15, 16)),
])
def test_asap_waits_for_quiet_hours_within_a_day(ready_at, expected):
    assert deliver(ready_at, digest="asap", quiet_hours="12:00-14:00") == expected


@pytest.mark.parametrize(("ready_at", "expected"), [
    (utc(2026, 1, 15, 21, 30), utc(2026, 1, 15, 21, 30)),
    (utc(2026, 1, 15, 23), utc(2026, 1, 16, 7)),  # before midnight: tomorrow's end
    (utc(2026, 1, 16, 3), utc(2026, 1, 16, 7)),  # after midnight: today's end
    (utc(2026, 1, 16, 7), utc(2026, 1, 16, 7)),
    (utc(2026, 7, 15, 23), utc(2026, 7, 16, 6)),  # 00:00 BST -> 07:00 BST
])
def test_asap_waits_for_quiet_hours_across_midnight(ready_at, expected):
    assert deliver(ready_at, digest="asap", quiet_hours="22:00-07:00") == expected


def test_hourly_slot_in_quiet_hours_goes_at_their_end_even_off_the_hour():
    assert deliver(utc(2026, 1, 15, 21, 10), digest="hourly", quiet_hours="22:30-07:30") == utc(2026, 1, 15, 22)
    assert deliver(utc(2026, 1, 15, 21, 10), digest="hourly", quiet_hours="22:00-07:30") == utc(2026, 1, 16, 7, 30)
    assert deliver(utc(2026, 1, 15, 22, 10), digest="hourly", quiet_hours="22:30-07:30") == utc(2026, 1, 16, 7, 30)
    # ready inside quiet hours, but the slot is after them: the slot
    assert deliver(utc(2026, 1, 16, 6, 10), digest="hourly", quiet_hours="22:00-06:30") == utc(2026, 1, 16, 7)


def test_daily_slot_in_quiet_hours_goes_at_their_end():
    assert deliver(utc(2026, 1, 15, 12), digest_hour=6, quiet_hours="22:00-07:15") == utc(2026, 1, 16, 7, 15)
    # ready inside quiet hours, the daily slot after them: unchanged
    assert deliver(utc(2026, 1, 16, 3), quiet_hours="22:00-07:00") == utc(2026, 1, 16, 8)
    assert deliver(utc(2026, 1, 16, 3), quiet_hours="22:00-08:00") == utc(2026, 1, 16, 8)  # end is not quiet


# --- the days the clocks change


@pytest.mark.parametrize(("zone", "hour", "ready_at", "expected", "local"), [
    # spring forward: an hour that does not exist that day goes when the gap ends
    (LONDON, 1, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1), "02:00 BST"),
    (LONDON, 2, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1), "02:00 BST"),
    (LONDON, 1, utc(2026, 3, 29, 1, 0, 1), utc(2026, 3, 30), "01:00 BST"),  # next day as usual
    (NEW_YORK, 1, utc(2026, 3, 7, 12), utc(2026, 3, 8, 6), "01:00 EST"),
    (NEW_YORK, 2, utc(2026, 3, 7, 12), utc(2026, 3, 8, 7), "03:00 EDT"),
    (NEW_YORK, 3, utc(2026, 3, 7, 12), utc(2026, 3, 8, 7), "03:00 EDT"),
    # fall back: an hour that happens twice goes the first time, and only then
    (LONDON, 1, utc(2026, 10, 24, 12), utc(2026, 10, 25, 0), "01:00 BST"),
    (LONDON, 1, utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1), "01:00 GMT"),  # not 01:00 GMT that night
    (LONDON, 2, utc(2026, 10, 24, 12), utc(2026, 10, 25, 2), "02:00 GMT"),
    (NEW_YORK, 1, utc(2026, 10, 31, 12), utc(2026, 11, 1, 5), "01:00 EDT"),
    (NEW_YORK, 1, utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6), "01:00 EST"),
    (NEW_YORK, 2, utc(2026, 10, 31, 12), utc(2026, 11, 1, 7), "02:00 EST"),
])
def test_daily_on_the_days_the_clocks_change(zone, hour, ready_at, expected, local):
    delivery = deliver(ready_at, timezone=zone, digest_hour=hour)
    assert delivery == expected
    assert delivery.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z") == local


@pytest.mark.parametrize(("zone", "quiet", "ready_at", "expected", "local"), [
    # ending in the gap: the end is the instant the gap ends
    (LONDON, "23:00-01:30", utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 1), "02:00 BST"),
    (LONDON, "00:30-01:00", utc(2026, 3, 29, 0, 45), utc(2026, 3, 29, 1), "02:00 BST"),
    (NEW_YORK, "22:00-02:30", utc(2026, 3, 8, 4), utc(2026, 3, 8, 7), "03:00 EDT"),
    # starting in the gap: quiet from the gap's end
    (LONDON, "01:30-06:00", utc(2026, 3, 29, 1), utc(2026, 3, 29, 5), "06:00 BST"),
    # ending in the repeated hour: its first occurrence...
    (LONDON, "23:00-01:30", utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 30), "01:30 BST"),
    (NEW_YORK, "22:00-01:30", utc(2026, 11, 1, 3), utc(2026, 11, 1, 5, 30), "01:30 EDT"),
    # ...or, when ready in the repeated hour before the end, its second, not the next night's
    (LONDON, "01:00-01:30", utc(2026, 10, 25, 1, 15), utc(2026, 10, 25, 1, 30), "01:30 GMT"),
    (NEW_YORK, "01:00-01:30", utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 6, 30), "01:30 EST"),
    # ending after the repeated hour: the clock's end, though 01:00-01:30 GMT reads outside the window
    (LONDON, "01:30-03:00", utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 3), "03:00 GMT"),
])
def test_quiet_hours_on_the_days_the_clocks_change(zone, quiet, ready_at, expected, local):
    delivery = deliver(ready_at, digest="asap", quiet_hours=quiet, timezone=zone)
    assert delivery == expected
    assert delivery.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z") == local


def test_daily_slot_in_quiet_hours_ending_in_the_gap():
    assert deliver(utc(2026, 3, 28, 12), digest_hour=0, quiet_hours="23:00-01:30") == utc(2026, 3, 29, 1)
    assert deliver(utc(2026, 3, 7, 12), digest_hour=1, quiet_hours="00:30-02:30",
                   timezone=NEW_YORK) == utc(2026, 3, 8, 7)


def test_quiet_end_skipped_by_the_clocks_into_the_next_quiet_period_waits_for_the_next_end():
    # 01:00 does not exist on 29 March and the gap ends at 02:00 BST, already quiet again (from 01:59)
    assert deliver(utc(2026, 3, 28, 23), digest="asap", quiet_hours="01:59-01:00") == utc(2026, 3, 30)


@pytest.mark.parametrize(("zone", "ready_at", "expected"), [
    (LONDON, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1)),  # 00:30 GMT -> 02:00 BST
    (LONDON, utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1)),  # 01:30 BST -> 01:00 GMT, struck again
    (LONDON, utc(2026, 10, 25, 1), utc(2026, 10, 25, 1)),  # 01:00 GMT on the dot stays
    (LONDON, utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2)),
    (NEW_YORK, utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7)),  # 01:30 EST -> 03:00 EDT
    (NEW_YORK, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6)),  # 01:30 EDT -> 01:00 EST
])
def test_hourly_on_the_days_the_clocks_change(zone, ready_at, expected):
    assert deliver(ready_at, digest="hourly", timezone=zone) == expected


_TIMES = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@hypothesis_settings(max_examples=300, deadline=None)
@given(ready_at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)),
       digest=st.sampled_from(DIGESTS), hour=st.integers(0, 23), zone=st.sampled_from([LONDON, NEW_YORK]),
       window=st.one_of(st.none(), st.tuples(_TIMES, _TIMES).filter(lambda w: w[0] != w[1])))
def test_delivery_is_soon_after_ready_and_never_in_quiet_hours(ready_at, digest, hour, zone, window):
    quiet = None if window is None else f"{window[0]:%H:%M}-{window[1]:%H:%M}"
    settings = DigestSettings(digest=digest, digest_hour=hour, quiet_hours=quiet, timezone=zone)
    delivery = next_delivery(settings, ready_at)
    assert delivery.tzinfo is timezone.utc and ready_at <= delivery < ready_at + timedelta(days=2)
    assert not in_quiet_hours(settings, delivery)
    if digest == "asap" and not in_quiet_hours(settings, ready_at):
        assert delivery == ready_at
    if digest == "hourly" and quiet is None:
        assert delivery - ready_at < timedelta(hours=1) and delivery.minute == delivery.second == 0


# --- retries


def test_retry_at_doubles_from_base():
    failed = utc(2026, 1, 15, 9)
    assert [retry_at(failed, n) - failed for n in range(1, 8)] == [
        timedelta(minutes=m) for m in (5, 10, 20, 40, 80, 160, 320)]


def test_retry_at_is_capped():
    failed = utc(2026, 1, 15, 9)
    assert retry_at(failed, 8) == failed + timedelta(hours=6)  # 640 minutes, capped
    assert retry_at(failed, 10_000) == failed + timedelta(hours=6)  # no overflow
    assert retry_at(failed, 3, base=timedelta(seconds=30), cap=timedelta(minutes=1)) == failed + timedelta(minutes=1)
    assert retry_at(failed, 2, base=timedelta(seconds=30), cap=timedelta(minutes=1)) == failed + timedelta(minutes=1)
    assert retry_at(failed, 1, base=timedelta(seconds=30), cap=timedelta(minutes=1)) == failed + timedelta(seconds=30)


@pytest.mark.parametrize(("count", "base", "message"), [(0, timedelta(minutes=5), "retry_count counts failures"),
                                                        (1, timedelta(0), "base must be a positive delay")])
def test_retry_at_refuses_nonsense(count, base, message):
    with pytest.raises(ValueError, match=message):
        retry_at(utc(2026, 1, 15, 9), count, base=base)
