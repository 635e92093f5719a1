"""Producing a stream's items on a thread of its own, a bounded number ahead of their consumer.

The apply of a large snapshot is two kinds of work in turn: Python's (decoding, normalizing, diffing,
deriving and encoding a chunk) and the database's (writing it, index and search maintenance included).
The database works without holding the GIL (psycopg2 while it sends and waits, sqlite3 in each
statement's step), so with the next chunk prepared on another thread the two overlap on two cores.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Empty, Full, Queue
from typing import TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.1


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`items`, produced on a thread of their own at most `depth` ahead of the consumer.

    An exception raised producing an item is raised to the consumer where it would have got that item.
    The consumer closing the iterator (or raising out of its loop, then closing it) stops the producer
    after the item it is producing, and closes `items` on the producer's thread; `close` returns once
    the producer has stopped, so nothing of it runs after the consumer has moved on."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(message: tuple) -> bool:
        while not stop.is_set():
            try:
                queue.put(message, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
                del item
            offer(("done", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            offer(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="jobsync-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            try:
                kind, value = queue.get(timeout=_POLL_SECONDS)
            except Empty:
                if not thread.is_alive() and queue.empty():
                    raise RuntimeError("the read-ahead producer stopped without a result") from None
                continue
            if kind == "item":
                yield value
                del value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()
