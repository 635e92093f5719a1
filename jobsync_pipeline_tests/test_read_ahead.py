"""read_ahead: items produced on another thread, errors raised to the consumer, an early stop stops it."""
from __future__ import annotations

import threading
import time

import pytest

from jobsync_pipeline.store.read_ahead import read_ahead


def test_items_arrive_in_order_produced_on_another_thread():
    threads = []

    def items():
        for n in range(50):
            threads.append(threading.current_thread().name)
            yield n

    assert list(read_ahead(items())) == list(range(50))
    assert set(threads) == {"jobsync-read-ahead"}


def test_the_producer_works_while_the_consumer_does():
    """Two items of 0.2 s each, consumed at 0.2 s each: about 0.6 s in all, not 0.8."""
    def items():
        for n in range(2):
            time.sleep(0.2)
            yield n

    started = time.monotonic()
    for _ in read_ahead(items()):
        time.sleep(0.2)
    assert time.monotonic() - started < 0.75


def test_it_stays_at_most_depth_items_ahead():
    produced = []

    def items():
        for n in range(10):
            produced.append(n)
            yield n

    stream = read_ahead(items(), depth=1)
    assert next(stream) == 0
    time.sleep(0.3)
    # one consumed, one waiting in the queue, one produced and waiting to be put
    assert len(produced) <= 3
    stream.close()


def test_an_error_producing_an_item_is_raised_where_the_consumer_would_get_it():
    def items():
        yield 1
        raise ValueError("record 2 is broken")

    got = []
    with pytest.raises(ValueError, match="record 2 is broken"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_closing_early_stops_the_producer_and_closes_its_items():
    closed = threading.Event()
    produced = []

    def items():
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            closed.set()

    stream = read_ahead(items())
    assert next(stream) == 0
    stream.close()  # as the apply's `finally` does when a write fails
    assert closed.is_set()  # already: close waits for the producer
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count < 1000
