"""When a user's notification digest may be delivered: its cadence, quiet hours and retries.

Pure rules, no I/O. Instants are aware UTC in and out; cadence and quiet hours are local wall time in
the user's zone, so "daily at 08:00" stays 08:00 for the user when the clocks change. Where a wall time
does not name exactly one instant (zoneinfo, PEP 495): a time the clocks skip (spring forward) means the
first instant after the gap, and a time they repeat (autumn) means its first occurrence, fold=0 — unless
that occurrence is already past when a quiet period ends or an hour strikes during the repeated hour.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobsync_pipeline.core.search import valid_timezone

Digest = Literal["asap", "hourly", "daily"]
DIGESTS: tuple[str, ...] = get_args(Digest)  # ("asap", "hourly", "daily")

_QUIET_HOURS = re.compile(r"\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND, _HOUR, _DAY = timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)


class DigestSettings(BaseModel):
    """How often a user's digest goes, and when it must not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: Digest = Field(default="daily", description="asap: as soon as there is something to send; hourly: "
                                                        "at the top of the hour; daily: once a day at digest_hour.")
    digest_hour: int = Field(default=8, ge=0, le=23, description="The local hour (0-23) a daily digest goes.")
    quiet_hours: str | None = Field(default=None, description="Local HH:MM-HH:MM during which nothing is sent "
                                                              "(start included, end not); may cross midnight, "
                                                              "as in 22:00-07:00.")
    timezone: str = Field(default="Europe/London", description="The user's IANA time zone (Europe/London, "
                                                               "America/New_York): what local time means.")

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is None:
            return None
        start, end = parse_quiet_hours(value)
        return f"{start:%H:%M}-{end:%H:%M}"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return valid_timezone(value)


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """The start and end of "HH:MM-HH:MM" ("7:00" is 07:00); ValueError saying what is wrong otherwise.

    Equal ends are refused: they could mean never quiet or always quiet, and neither is worth a setting.
    """
    match = _QUIET_HOURS.fullmatch(text)
    if not match:
        raise ValueError(f"quiet hours {text!r} are not HH:MM-HH:MM (such as 22:00-07:00)")
    hour1, minute1, hour2, minute2 = map(int, match.groups())
    for hour, minute in ((hour1, minute1), (hour2, minute2)):
        if hour > 23 or minute > 59:
            raise ValueError(f"quiet hours {text!r}: {hour:02d}:{minute:02d} is not a time of day (00:00 to 23:59)")
    start, end = time(hour1, minute1), time(hour2, minute2)
    if start == end:
        raise ValueError(f"quiet hours {text!r} start and end at the same time; give a window such as 22:00-07:00")
    return start, end


def in_quiet_hours(settings: DigestSettings, at: datetime) -> bool:
    """Whether the local wall clock at `at` (aware) reads inside the quiet window: start included, end
    not, so a window ending at 07:00 lets a digest go at 07:00."""
    if settings.quiet_hours is None:
        return False
    start, end = parse_quiet_hours(settings.quiet_hours)
    now = _utc(at, "at").astimezone(ZoneInfo(settings.timezone)).time()
    return start <= now < end if start < end else (now >= start or now < end)


def next_delivery(settings: DigestSettings, ready_at: datetime) -> datetime:
    """The earliest instant (UTC) at or after `ready_at` (aware) at which the digest may go.

    The cadence gives a slot: asap is `ready_at` itself, hourly the next local top of the hour, daily
    the next local digest_hour:00 (its first occurrence only, so it goes once on the day the clocks go
    back). A slot in quiet hours moves to the end of that quiet period, which is a slot of its own: not
    rounded to the next hour or day, or the user would wait for no reason.
    """
    ready_at = _utc(ready_at, "ready_at")
    zone = ZoneInfo(settings.timezone)
    local = ready_at.astimezone(zone).replace(tzinfo=None)
    if settings.digest == "asap":
        at = ready_at
    elif settings.digest == "hourly":
        top = local.replace(minute=0, second=0, microsecond=0)  # this hour may strike again if clocks go back
        at = min(t for hour in (top, top + _HOUR) for t in _instants(hour, zone) if t >= ready_at)
    else:
        day = datetime.combine(local.date(), time(settings.digest_hour))
        firsts = (_instants(wall, zone)[0] for wall in (day, day + _DAY))
        at = min(t for t in firsts if t >= ready_at)
    # One pass, unless the clocks skip the end of the quiet period and the instant the gap ends reads
    # quiet again (a window starting by then); each pass moves strictly later, and the next day's end exists.
    while in_quiet_hours(settings, at):
        _, end = parse_quiet_hours(settings.quiet_hours)
        day = datetime.combine(at.astimezone(zone).date(), end)
        at = min(t for wall in (day, day + _DAY) for t in _instants(wall, zone) if t > at)
    return at


def retry_at(failed_at: datetime, retry_count: int, base: timedelta = timedelta(minutes=5),
             cap: timedelta = timedelta(hours=6)) -> datetime:
    """When to try a failed delivery again: `base` after the first failure (retry_count 1), doubling with
    each further one, never more than `cap` after, so a mail server that is down for hours is not
    hammered and one back in a minute is not kept waiting long."""
    if retry_count < 1:
        raise ValueError(f"retry_count counts failures, from 1; got {retry_count}")
    if base <= timedelta(0):
        raise ValueError(f"base must be a positive delay; got {base}")
    doubling = 2 ** (retry_count - 1)  # compared before multiplying: a timedelta overflows near 2**38 * 5 min
    return failed_at + (cap if doubling >= cap / base else base * doubling)


def _utc(at: datetime, name: str) -> datetime:
    """`at` in UTC; ValueError when it is naive, which would silently be read as the server's local time."""
    if at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), not naive: {at.isoformat()}")
    return at.astimezone(UTC)


def _instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the clock in `zone` reads the naive `wall`, earliest first: one as a
    rule, two when the clocks go back over it (fold=0, then fold=1), and when they skip it, the instant
    the gap ends (the first that exists after it)."""
    first, second = (wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return sorted({first, second})
    # In a gap, fold=0 reads the wall with the offset from before the jump and fold=1 with the one from
    # after, so the jump lies between the two; zoneinfo does not expose it, so bisect it to the second
    # (transitions are on whole seconds).
    before = (second - _EPOCH) // _SECOND
    after = -((_EPOCH - first) // _SECOND)
    new_offset = first.astimezone(zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if (_EPOCH + middle * _SECOND).astimezone(zone).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return [_EPOCH + after * _SECOND]
