"""A bucket of `{board}.json` files: a local folder by default, any fsspec URL (s3://, gs://) by UPath."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from upath import UPath

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.core.models import RawPayload

DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
# Board names become Dagster partition keys, store keys and file names again: keep them boring.
_SAFE_BOARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def board_name_problem(board: str) -> str | None:
    """Why `board` cannot be a partition key, or None when it can."""
    if any(ord(c) < 32 or ord(c) == 127 for c in board):
        return "contains control characters"
    if "/" in board or "\\" in board or ".." in board:
        return "contains a path separator or '..'"
    if not _SAFE_BOARD.fullmatch(board):
        return "is not 1-128 of A-Z a-z 0-9 . _ - starting with a letter or digit"
    return None


@dataclass(frozen=True)
class BucketFile:
    name: str
    board: str
    etag: str
    size: int


@dataclass(frozen=True)
class BucketListing:
    files: list[BucketFile]
    refused: dict[str, str]  # file name -> why it is not a board


class Bucket:
    """Lists and reads the company files of one bucket folder."""

    suffix = ".json"

    def __init__(self, url: str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES):
        self.url = url
        self.root = UPath(url)
        self.max_file_bytes = max_file_bytes

    def listing(self) -> BucketListing:
        if not self.root.is_dir():
            raise BoardError(f"the bucket {self.url} is not a readable folder; point JOBSYNC_BUCKET_URL at the "
                             "folder (or s3://bucket/prefix) the scraper writes to")
        files, refused = [], {}
        for path in sorted(self.root.iterdir(), key=lambda p: p.name):
            if not path.name.endswith(self.suffix) or path.is_dir():
                continue
            board = path.name[: -len(self.suffix)]
            problem = board_name_problem(board)
            if problem:
                refused[path.name] = f"file name {path.name!r} {problem}"
                continue
            size, etag = _size_and_etag(path)
            files.append(BucketFile(name=path.name, board=board, etag=etag, size=size))
        return BucketListing(files=files, refused=refused)

    def list_files(self) -> list[BucketFile]:
        return self.listing().files

    def read(self, board: str, *, unless_etag: str | None = None) -> RawPayload:
        """The board's file; `not_modified` (and no read) when its etag is still `unless_etag`."""
        problem = board_name_problem(board)
        if problem:
            raise BoardError(f"board name {board!r} {problem}")
        path = self.root / f"{board}{self.suffix}"
        location = str(path)
        try:
            size, etag = _size_and_etag(path)
            fetched_at = datetime.now(timezone.utc)
            if unless_etag is not None and etag == unless_etag:
                return RawPayload(board=board, location=location, body=b"", fetched_at=fetched_at, etag=etag,
                                  not_modified=True)
            if size > self.max_file_bytes:
                raise BoardError(f"{location}: {size:,} bytes is over the {self.max_file_bytes:,}-byte limit "
                                 "(JOBSYNC_MAX_FILE_BYTES raises it)")
            with path.open("rb") as stream:
                body = stream.read(self.max_file_bytes + 1)
        except FileNotFoundError as exc:
            raise BoardError(f"{location}: no such file in the bucket") from exc
        except OSError as exc:
            raise BoardError(f"{location}: cannot be read ({exc})") from exc
        if len(body) > self.max_file_bytes:  # grew between stat and read
            raise BoardError(f"{location}: over the {self.max_file_bytes:,}-byte limit (JOBSYNC_MAX_FILE_BYTES "
                             "raises it)")
        return RawPayload(board=board, location=location, body=body, fetched_at=fetched_at, etag=etag)


def _size_and_etag(path: UPath) -> tuple[int, str]:
    """Object stores give an ETag; a plain folder gives mtime and size, which change on every write."""
    info = path.fs.info(path.path)
    size = int(info["size"])
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if not etag:
        etag = f"{info.get('mtime') or info.get('LastModified') or info.get('updated')}-{size}"
    return size, str(etag).strip('"')
