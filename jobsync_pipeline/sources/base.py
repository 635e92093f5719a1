"""What every source connector shares: the raw payload it fetches and the errors that fail one board."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class BoardError(Exception):
    """One board cannot be synced (missing, too large, unreadable, malformed); other boards go on.

    The message names the board's file or URL and the problem, because it is what an operator
    reads in the run log, the `syncs` row and the CLI summary.
    """


@dataclass(frozen=True)
class RawPayload:
    """A board's payload exactly as fetched, with the validators that say whether it changed."""

    board: str
    location: str
    body: bytes
    fetched_at: datetime
    etag: str | None = None
