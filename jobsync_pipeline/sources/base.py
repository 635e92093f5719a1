"""What every source connector shares: the errors that fail one board, JSON decoding, a paused collector."""
from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_UTF8_BOM = b"\xef\xbb\xbf"


class BoardError(Exception):
    """One board cannot be synced (missing, too large, unreadable, malformed); other boards go on.

    The message names the board's file or URL and the problem, because it is what an operator
    reads in the run log, the `syncs` row and the CLI summary.
    """


def error_text(exc: BaseException) -> str:
    """A board error's message as operators read it; unexpected errors keep their type."""
    return str(exc) if isinstance(exc, BoardError) else f"{type(exc).__name__}: {exc}"


@contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a payload is decoded or postings are built.

    Decoding a payload or building a chunk of postings allocates containers and frees none until the
    end, so the collector would traverse the growing result again and again for cycles it cannot
    have (a fifth of the parse time at 100,000 postings); reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_json(body: bytes, location: str, *, replace_bad_utf8: bool = False) -> Any:
    """JSON from bytes as real tools write them (UTF-8 with or without BOM, UTF-16/32 with BOM).

    `replace_bad_utf8`: bytes that are not UTF-8 become U+FFFD instead of failing the payload (a
    feed that mislabels one job's Latin-1 text should not lose every other job).
    """
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM):]
    try:
        with collection_paused():
            if replace_bad_utf8:
                return json.loads(body.decode("utf-8", errors="replace"))
            return json.loads(body)
    except UnicodeDecodeError as exc:
        raise BoardError(f"{location}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise BoardError(f"{location}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    except RecursionError as exc:
        raise BoardError(f"{location}: not usable JSON (nested too deeply)") from exc
