"""Per-host pacing as slot reservations: the arithmetic, the `Pacer` protocol and the in-process pacer.

A request reserves its host's next slot (no sooner than the interval after the previous slot, nor
before a Retry-After hold) and then sleeps until it, holding nothing: the reservation itself keeps the
next request an interval later. `PoliteClient` asks a `Pacer` for each attempt; `InProcessPacer` paces
the requests of one process, `jobsync_pipeline.store.pacing.StorePacer` those of every process sharing
a store (same arithmetic, the state in a table). No Dagster and no store here.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True)
class HostSlots:
    """What pacing remembers of a host, in the pacer's clock (seconds)."""

    last_slot_at: float = -math.inf  # the newest slot handed out
    next_slot_at: float = -math.inf  # the newest slot plus the interval of whoever reserved it
    held_until: float = -math.inf  # a Retry-After: no slot before this


def reserve_slot(state: HostSlots, now: float, interval: float, delay: float = 0.0) -> tuple[float, HostSlots]:
    """(the slot, the host's state after reserving it) for a request that may start `delay` from `now`.

    Measured from the previous slot with the longer of both intervals, so a host two clients pace at
    different rates still gets the slower spacing after each slower request.
    """
    slot = max(now + delay, state.next_slot_at, state.last_slot_at + interval, state.held_until)
    return slot, replace(state, last_slot_at=slot, next_slot_at=slot + interval)


def hold_slots(state: HostSlots, until: float) -> HostSlots:
    """No slot before `until` (a hold only ever lengthens)."""
    return replace(state, held_until=max(state.held_until, until))


@dataclass(frozen=True)
class Slot:
    """A reserved slot: `at` in the pacer's clock (for `Pacer.voided`), `wait` the seconds until it."""

    at: float
    wait: float


class Pacer(Protocol):
    """Where a client's requests get their slots. The client sees durations only (`Slot.wait`, a hold's
    seconds), so its own clock (monotonic, or a fake one) never has to agree with the pacer's."""

    def reserve(self, host: str, interval: float, delay: float = 0.0) -> Slot:
        """Reserve the host's next slot, no sooner than `delay` seconds from now."""

    def hold_off(self, host: str, seconds: float) -> None:
        """The server asked for quiet: no slot of the host for `seconds` from now."""

    def voided(self, host: str, slot: Slot) -> bool:
        """Whether a hold placed after `slot` was reserved covers it: the client then reserves again."""


class InProcessPacer:
    """Slots shared by the threads of one process (the default of a client given no pacer)."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._hosts: dict[str, HostSlots] = {}

    def reserve(self, host: str, interval: float, delay: float = 0.0) -> Slot:
        with self._lock:
            now = self._clock()
            at, self._hosts[host] = reserve_slot(self._hosts.get(host, HostSlots()), now, interval, delay)
        return Slot(at, max(0.0, at - now))

    def hold_off(self, host: str, seconds: float) -> None:
        with self._lock:
            self._hosts[host] = hold_slots(self._hosts.get(host, HostSlots()), self._clock() + seconds)

    def voided(self, host: str, slot: Slot) -> bool:
        with self._lock:
            return self._hosts.get(host, HostSlots()).held_until > slot.at
