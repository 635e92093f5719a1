"""A bucket of company files (jobsync_pipeline/sources/bucket.py), on a local tmp folder."""
from __future__ import annotations

import os

import pytest

from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.bucket import Bucket, board_name_problem


def write(folder, name: str, body: bytes = b"{}") -> None:
    (folder / name).write_bytes(body)


# --- board names --------------------------------------------------------------------------------

@pytest.mark.parametrize("board", ["acme", "Acme-Corp", "kaito_mobility", "v2.board", "9lives", "a" * 128])
def test_good_board_names(board):
    assert board_name_problem(board) is None


@pytest.mark.parametrize(("board", "problem"), [
    ("", "is not 1-128"),
    ("a" * 129, "is not 1-128"),
    ("acme corp", "is not 1-128"),
    (" acme", "is not 1-128"),
    (".hidden", "is not 1-128"),
    ("-dash", "is not 1-128"),
    ("_under", "is not 1-128"),
    ("caf\u00e9", "is not 1-128"),
    ("a:b", "is not 1-128"),
    ("..x", "path separator or '..'"),
    ("a..b", "path separator or '..'"),
    ("a/b", "path separator or '..'"),
    ("a\\b", "path separator or '..'"),
    ("a\x00b", "control characters"),
    ("a\nb", "control characters"),
    ("a\x7fb", "control characters"),
    ("a\tb", "control characters"),
])
def test_bad_board_names(board, problem):
    assert problem in board_name_problem(board)


# --- listing ------------------------------------------------------------------------------------

def test_listing_lists_json_files_sorted_with_sizes(tmp_path):
    write(tmp_path, "zeta.json", b'{"a": 1}')
    write(tmp_path, "alpha.json", b"{}")
    write(tmp_path, "notes.txt")
    write(tmp_path, "alpha.json.bak")
    (tmp_path / "folder.json").mkdir()
    listing = Bucket(str(tmp_path)).listing()
    assert [(f.name, f.board, f.size) for f in listing.files] == [
        ("alpha.json", "alpha", 2), ("zeta.json", "zeta", 8)]
    assert listing.refused == {}
    assert Bucket(str(tmp_path)).list_files() == listing.files


def test_etag_changes_when_a_file_is_rewritten(tmp_path):
    write(tmp_path, "acme.json", b'{"v": 1}')
    bucket = Bucket(str(tmp_path))
    before = bucket.listing().files[0].etag
    assert bucket.listing().files[0].etag == before  # stable while untouched
    assert bucket.read("acme").etag == before
    write(tmp_path, "acme.json", b'{"v": 2}')  # same size: only the mtime tells
    stat = (tmp_path / "acme.json").stat()
    os.utime(tmp_path / "acme.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    after = bucket.listing().files[0].etag
    assert after != before
    assert bucket.read("acme").etag == after


def test_etag_changes_with_size(tmp_path):
    write(tmp_path, "acme.json", b"{}")
    bucket = Bucket(str(tmp_path))
    before = bucket.listing().files[0].etag
    stat = (tmp_path / "acme.json").stat()
    write(tmp_path, "acme.json", b'{"longer": true}')
    os.utime(tmp_path / "acme.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    assert bucket.listing().files[0].etag != before


@pytest.mark.parametrize("name", ["..x.json", "acme corp.json", "tab\there.json", "bell\x07.json",
                                  "new\nline.json", ".hidden.json", ".json", "caf\u00e9.json"])
def test_refused_names_are_reported_and_never_listed(tmp_path, name):
    write(tmp_path, "good.json")
    write(tmp_path, name)
    listing = Bucket(str(tmp_path)).listing()
    assert [f.name for f in listing.files] == ["good.json"]
    assert list(listing.refused) == [name]
    assert repr(name) in listing.refused[name]
    assert listing.refused[name] == f"file name {name!r} {board_name_problem(name[:-5])}"


def test_missing_bucket_folder_is_a_board_error(tmp_path):
    with pytest.raises(BoardError, match="is not a readable folder"):
        Bucket(str(tmp_path / "nope")).listing()


def test_empty_bucket_lists_nothing(tmp_path):
    listing = Bucket(str(tmp_path)).listing()
    assert listing.files == [] and listing.refused == {}


# --- reading ------------------------------------------------------------------------------------

def test_read_returns_the_bytes_and_where_they_came_from(tmp_path):
    body = '{"company": "Bäcker"}'.encode()
    write(tmp_path, "acme.json", body)
    payload = Bucket(str(tmp_path)).read("acme")
    assert payload.board == "acme"
    assert payload.body == body
    assert payload.location.endswith("acme.json")
    assert payload.fetched_at.tzinfo is not None
    assert payload.etag


def test_read_over_the_size_limit_is_a_board_error(tmp_path):
    write(tmp_path, "big.json", b"x" * 101)
    write(tmp_path, "fits.json", b"x" * 100)
    bucket = Bucket(str(tmp_path), max_file_bytes=100)
    assert bucket.read("fits").body == b"x" * 100
    with pytest.raises(BoardError) as caught:
        bucket.read("big")
    message = str(caught.value)
    assert "big.json" in message
    assert "101 bytes is over the 100-byte limit" in message


def test_read_missing_file_is_a_board_error(tmp_path):
    with pytest.raises(BoardError) as caught:
        Bucket(str(tmp_path)).read("ghost")
    assert "ghost.json" in str(caught.value)
    assert "no such file" in str(caught.value)


@pytest.mark.parametrize("board", ["../secret", "..", "a/b", "bad name", ""])
def test_read_refuses_bad_board_names(tmp_path, board):
    (tmp_path / "inner").mkdir()
    write(tmp_path, "secret.json")
    with pytest.raises(BoardError, match="board name"):
        Bucket(str(tmp_path / "inner")).read(board)


def test_read_unreadable_file_is_a_board_error(tmp_path):
    (tmp_path / "acme.json").mkdir()  # a folder where the file should be
    with pytest.raises(BoardError, match="acme.json"):
        Bucket(str(tmp_path)).read("acme")


def test_file_url_works_too(tmp_path):
    write(tmp_path, "acme.json", b'{"a": 1}')
    write(tmp_path, "bad name.json")
    bucket = Bucket(f"file://{tmp_path}")
    listing = bucket.listing()
    assert [f.board for f in listing.files] == ["acme"]
    assert list(listing.refused) == ["bad name.json"]
    assert bucket.read("acme").body == b'{"a": 1}'
    assert bucket.read("acme").etag == listing.files[0].etag
    with pytest.raises(BoardError, match="no such file"):
        bucket.read("ghost")
