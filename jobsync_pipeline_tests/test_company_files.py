"""The company-files parser and connector (jobsync_pipeline/sources/company_files.py)."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobsync_pipeline.core.models import POSTING_COLUMNS, KnownRecords
from jobsync_pipeline.core.normalize import clean_text, fallback_external_id
from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.bucket import Bucket
from jobsync_pipeline.sources.collect import PostingCollector
from jobsync_pipeline.sources.company_files import (CompanyFilesConnector, JobNormalizer, parse_company_file,
                                                   posted_date, posted_date_column, requirements_column,
                                                   requirements_json)
from jobsync_pipeline_tests.conftest import FIXTURES, SAMPLE_BUCKET

BAD_FILES = FIXTURES / "company_files" / "bad"
CADIZ_ID = fallback_external_id("Recepcionista de noche", "Cádiz, España", "Marisol Hoteles")


def payload_of(path: Path) -> RawPayload:
    return RawPayload(board=path.stem, location=str(path), body=path.read_bytes(),
                      fetched_at=datetime.now(timezone.utc))


def parse_fixture(folder: str, board: str):
    """A shipped sample snapshot's file (snapshot_1, snapshot_2)."""
    return parse_company_file(payload_of(SAMPLE_BUCKET / folder / f"{board}.json"))


def parse_body(body: bytes | str, board: str = "acme"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return parse_company_file(RawPayload(board=board, location=f"bucket/{board}.json", body=body,
                                         fetched_at=datetime.now(timezone.utc)))


def company_file(*jobs: dict, company: str = "Acme", scraped_at: str | None = "2026-11-20T06:00:00Z") -> str:
    document = {"company": company, "jobs": list(jobs)}
    if scraped_at is not None:
        document["scrapedAt"] = scraped_at
    return json.dumps(document, ensure_ascii=False)


def job(**fields) -> dict:
    return {"id": "j-1", "title": "Baker", "location": "Leeds", "isActive": True, **fields}


def ids(parsed) -> list[str]:
    return sorted(parsed.postings["external_id"])


# --- the fixtures -------------------------------------------------------------------------------

@pytest.mark.parametrize(("folder", "board", "found", "inactive"), [
    ("snapshot_1", "amberline-freight", 3, 0),
    ("snapshot_1", "marisol-hoteles", 3, 0),
    ("snapshot_1", "tessellate-studio", 2, 0),
    ("snapshot_2", "amberline-freight", 3, 0),
    ("snapshot_2", "marisol-hoteles", 2, 0),
    ("snapshot_2", "tessellate-studio", 2, 1),
])
def test_fixture_counts(folder, board, found, inactive):
    parsed = parse_fixture(folder, board)
    assert parsed.board == board
    assert parsed.found == found
    assert parsed.inactive == inactive
    assert parsed.bad_records == [] and parsed.duplicates == []
    assert list(parsed.postings.columns) == list(POSTING_COLUMNS)
    assert parsed.postings["external_id"].is_unique


def test_fixture_header_fields():
    parsed = parse_fixture("snapshot_1", "marisol-hoteles")
    assert parsed.display_name == "Marisol Hoteles"
    assert parsed.snapshot_at == datetime(2026, 11, 17, 22, 42, 31, tzinfo=timezone.utc)  # written +01:00


def test_fixture_posting_is_normalized():
    parsed = parse_fixture("snapshot_1", "amberline-freight")
    row = parsed.postings.set_index("external_id").loc["af-3101"]
    assert row["title"] == "Warehouse Shift Supervisor"
    assert row["company"] == "Amberline Freight"
    assert row["location"] == "Rotterdam, Netherlands"
    assert row["url"] == "https://careers.amberline-freight.example/openings/af-3101"
    assert json.loads(row["requirements"]) == [
        "2+ years leading warehouse teams", "Reach truck licence", "Dutch or English"]
    assert row["posted_date"] == "2026-11-03"


def test_fixture_ids_across_snapshots():
    assert ids(parse_fixture("snapshot_1", "amberline-freight")) == ["af-3101", "af-3102", "af-3103"]
    assert ids(parse_fixture("snapshot_2", "amberline-freight")) == ["af-3101", "af-3102", "af-3107"]
    assert ids(parse_fixture("snapshot_2", "tessellate-studio")) == ["ts-0042", "ts-0049"]


def test_changed_posting_has_a_new_hash_and_unchanged_the_same():
    before = parse_fixture("snapshot_1", "amberline-freight").postings.set_index("external_id")
    after = parse_fixture("snapshot_2", "amberline-freight").postings.set_index("external_id")
    assert before.loc["af-3101", "content_hash"] == after.loc["af-3101", "content_hash"]
    assert before.loc["af-3102", "content_hash"] != after.loc["af-3102", "content_hash"]


def test_id_less_job_is_keyed_by_title_location_company_and_matched_across_snapshots():
    first = parse_fixture("snapshot_1", "marisol-hoteles").postings.set_index("external_id")
    second = parse_fixture("snapshot_2", "marisol-hoteles").postings.set_index("external_id")
    assert CADIZ_ID in first.index and CADIZ_ID in second.index
    assert CADIZ_ID == "~recepcionista-de-noche|cádiz-españa|marisol-hoteles"
    assert first.loc[CADIZ_ID, "content_hash"] == second.loc[CADIZ_ID, "content_hash"]
    assert sorted(first.index) == sorted(["MH-118", "MH-124", CADIZ_ID])
    assert sorted(second.index) == sorted(["MH-118", CADIZ_ID])


def test_id_less_job_falls_back_to_the_file_company_and_survives_noise():
    plain = parse_body(company_file({"title": "Field Technician", "location": "Nagoya"}))
    noisy = parse_body(company_file({"title": " FIELD  technician! ", "location": "Nagoya.", "id": ""}))
    assert ids(plain) == ids(noisy) == [fallback_external_id("Field Technician", "Nagoya", "Acme")]


def test_inactive_job_is_counted_and_absent():
    parsed = parse_fixture("snapshot_2", "tessellate-studio")
    assert parsed.inactive == 1
    assert "ts-0043" not in set(parsed.postings["external_id"])
    assert parsed.bad_records == []


def test_truncated_file_is_a_board_error_naming_file_and_problem():
    with pytest.raises(BoardError) as caught:
        parse_company_file(payload_of(BAD_FILES / "truncated.json"))
    message = str(caught.value)
    assert "truncated.json" in message
    assert "not valid JSON" in message and "line" in message


def test_wrong_shape_file_is_a_board_error_naming_file_and_problem():
    with pytest.raises(BoardError) as caught:
        parse_company_file(payload_of(BAD_FILES / "wrong-shape.json"))
    message = str(caught.value)
    assert "wrong-shape.json" in message
    assert "expected an object" in message and "list" in message


def test_missing_title_is_one_bad_record_beside_the_good_posting():
    parsed = parse_company_file(payload_of(BAD_FILES / "missing-title.json"))
    assert ids(parsed) == ["wc-7"]
    assert len(parsed.bad_records) == 1
    bad = parsed.bad_records[0]
    assert "title" in bad.reason
    assert bad.position == 1
    assert bad.external_id == "wc-8"
    assert json.loads(bad.record)["location"] == "Bath, UK"


def test_connector_lists_fetches_and_parses_a_bucket():
    connector = CompanyFilesConnector(Bucket(str(SAMPLE_BUCKET / "snapshot_1")))
    assert connector.boards() == ["amberline-freight", "marisol-hoteles", "tessellate-studio"]
    assert {board: connector.parse(connector.fetch(board)).found for board in connector.boards()} == {
        "amberline-freight": 3, "marisol-hoteles": 3, "tessellate-studio": 2}


# --- encodings ----------------------------------------------------------------------------------

def test_utf8_with_bom_is_accepted():
    parsed = parse_body(b"\xef\xbb\xbf" + company_file(job(title="Bäcker")).encode("utf-8"))
    assert parsed.postings["title"].tolist() == ["Bäcker"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_are_accepted(encoding):
    text = company_file(job(title="東京 Bäcker"))
    body = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):
        body = ("\ufeff" + text).encode(encoding)  # with an explicit BOM
    assert parse_body(body).postings["title"].tolist() == ["東京 Bäcker"]


def test_non_utf8_bytes_are_a_board_error():
    body = company_file(job(title="Bäcker")).encode("latin-1")
    with pytest.raises(BoardError) as caught:
        parse_body(body)
    assert "bucket/acme.json" in str(caught.value)
    assert "not UTF-8" in str(caught.value)


@pytest.mark.parametrize("body", [b"", b"   ", b"null", b'"text"', b"42"])
def test_empty_or_scalar_documents_are_board_errors(body):
    with pytest.raises(BoardError, match="bucket/acme.json"):
        parse_body(body)


def test_deeply_nested_json_is_a_board_error_not_a_crash():
    with pytest.raises(BoardError, match="bucket/acme.json: not usable JSON"):
        parse_body(b"[" * 200_000 + b"]" * 200_000)


def test_a_deeply_nested_record_is_a_bad_record_or_a_board_error_never_a_crash():
    # near the recursion limit json.loads may just manage a record that json.dumps (for the bad record)
    # then cannot: every depth must end in a parse or a BoardError
    limit = sys.getrecursionlimit()
    outcomes = set()
    for depth in range(limit - 150, limit + 5):
        body = company_file("DEEP", job()).replace('"DEEP"', "[" * depth + "]" * depth)
        try:
            parsed = parse_body(body)
        except BoardError:
            outcomes.add("board error")
            continue
        assert ids(parsed) == ["j-1"] and len(parsed.bad_records) == 1
        assert_storable(parsed)
        outcomes.add("bad record")
    assert outcomes == {"board error", "bad record"}


def escaped(document: str) -> str:
    """`document` with the backslashes json.dumps doubled made single again (to write raw escapes)."""
    return document.replace("\\\\", "\\")


def assert_storable(parsed) -> None:
    """Every text of the postings and bad records encodes as UTF-8 and holds no NUL (PostgreSQL text)."""
    texts = [v for r in parsed.postings.to_dict("records") for v in r.values() if isinstance(v, str)]
    texts += [t for b in parsed.bad_records for t in (b.reason, b.record, b.external_id) if t is not None]
    for text in texts:
        text.encode("utf-8")  # raises on a lone surrogate
        assert "\x00" not in text


def test_lone_surrogates_make_a_bad_record_that_can_be_stored():
    # a JavaScript scraper that cut a string between the halves of an emoji writes "\ud83d" alone
    body = escaped(company_file(job(id="j-\\ud83d", description="cut \\ud83d"), job(id="j-2")))
    parsed = parse_body(body)
    assert ids(parsed) == ["j-2"]
    assert len(parsed.bad_records) == 1
    bad = parsed.bad_records[0]
    assert "description" in bad.reason
    assert bad.external_id == "j-\\ud83d"  # shown as its escape
    assert "cut \\ud83d" in bad.record
    assert_storable(parsed)


def test_surrogate_pairs_are_one_character():
    pair = parse_body(escaped(company_file(job(title="Baker \\ud83d\\ude00"))))
    assert pair.postings["title"].tolist() == ["Baker \U0001f600"]
    assert parse_body(company_file(job(title="Baker \U0001f600"))).postings["title"].tolist() == ["Baker \U0001f600"]


@pytest.mark.parametrize(("field", "posting_field"), [
    ("id", "external_id"), ("title", "title"), ("location", "location"), ("url", "url"),
    ("description", "description"), ("postedDate", "posted_date"), ("company", "company")])
def test_nul_characters_make_a_bad_record_that_can_be_stored(field, posting_field):
    parsed = parse_body(company_file(job(**{field: "a\x00b"}), job(id="j-2")))
    assert ids(parsed) == ["j-2"]
    assert len(parsed.bad_records) == 1
    assert parsed.bad_records[0].reason == f"{posting_field}: contains a NUL character"
    assert_storable(parsed)


def test_nul_in_a_requirement_is_a_bad_record():
    parsed = parse_body(company_file(job(requirements=["ok", "a\x00b"])))
    assert parsed.found == 0 and "requirements" in parsed.bad_records[0].reason


def test_nul_in_the_file_company_is_a_board_error():
    with pytest.raises(BoardError, match="company"):
        parse_body(company_file(job(), company="Acme\x00"))


# --- fields -------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", [False, "false", "False", "no", "off", 0, "0"])
def test_inactive_spellings_are_inactive_never_active(flag):
    parsed = parse_body(company_file(job(isActive=flag), job(id="j-2")))
    assert ids(parsed) == ["j-2"]
    assert parsed.inactive == 1
    assert parsed.bad_records == []


@pytest.mark.parametrize("flag", [True, "true", "yes", 1])
def test_active_spellings_are_active(flag):
    parsed = parse_body(company_file(job(isActive=flag)))
    assert ids(parsed) == ["j-1"] and parsed.inactive == 0


def test_missing_is_active_means_active():
    body = company_file({"id": "j-1", "title": "Baker"})
    assert ids(parse_body(body)) == ["j-1"]


@pytest.mark.parametrize("flag", ["maybe", "", None, [], 2])
def test_unclear_is_active_is_a_bad_record(flag):
    parsed = parse_body(company_file(job(isActive=flag), job(id="j-2")))
    assert ids(parsed) == ["j-2"]
    assert parsed.inactive == 0
    assert len(parsed.bad_records) == 1
    assert "isActive" in parsed.bad_records[0].reason
    assert parsed.bad_records[0].external_id == "j-1"


def test_numeric_id_becomes_text():
    parsed = parse_body(company_file(job(id=123)))
    assert ids(parsed) == ["123"]


def test_numeric_id_in_a_bad_record_is_text_too():
    parsed = parse_body(company_file(job(id=7, title=None)))
    assert parsed.bad_records[0].external_id == "7"


def test_duplicate_id_keeps_one_posting():
    parsed = parse_body(company_file(job(title="First"), job(title="Second"), job(id="j-2")))
    assert ids(parsed) == ["j-1", "j-2"]
    assert parsed.postings.set_index("external_id").loc["j-1", "title"] == "First"
    assert parsed.duplicates == ["j-1"]


def test_id_less_duplicates_are_duplicates_of_their_fallback_id():
    same = {"title": "Driver", "location": "Leeds"}
    parsed = parse_body(company_file(same, dict(same, title="DRIVER!")))
    assert parsed.found == 1
    assert parsed.duplicates == [fallback_external_id("Driver", "Leeds", "Acme")]


def test_missing_scraped_at_is_a_board_error():
    with pytest.raises(BoardError) as caught:
        parse_body(company_file(job(), scraped_at=None))
    assert "bucket/acme.json" in str(caught.value)
    assert "scrapedAt" in str(caught.value)


@pytest.mark.parametrize("document", [
    {"scrapedAt": "2026-11-20T06:00:00Z", "jobs": []},
    {"company": "", "scrapedAt": "2026-11-20T06:00:00Z", "jobs": []},
    {"company": "Acme", "scrapedAt": "yesterday", "jobs": []},
    {"company": "Acme", "scrapedAt": "2026-11-20T06:00:00Z"},
    {"company": "Acme", "scrapedAt": "2026-11-20T06:00:00Z", "jobs": {"id": 1}},
])
def test_bad_headers_are_board_errors(document):
    with pytest.raises(BoardError, match="bucket/acme.json: not a company job file"):
        parse_body(json.dumps(document))


def test_naive_and_offset_scraped_at_become_utc():
    naive = parse_body(company_file(job(), scraped_at="2026-11-20T06:00:00"))
    offset = parse_body(company_file(job(), scraped_at="2026-11-20T08:00:00+02:00"))
    assert naive.snapshot_at == offset.snapshot_at == datetime(2026, 11, 20, 6, tzinfo=timezone.utc)


def test_requirements_as_a_single_string():
    parsed = parse_body(company_file(job(requirements="  Food hygiene  certificate ")))
    assert json.loads(parsed.postings.loc[0, "requirements"]) == ["Food hygiene certificate"]


@pytest.mark.parametrize(("value", "expected"), [(None, []), ([], []), (["a", 3], ["a", "3"])])
def test_requirements_shapes(value, expected):
    parsed = parse_body(company_file(job(requirements=value)))
    assert json.loads(parsed.postings.loc[0, "requirements"]) == expected


def test_optional_fields_default_to_empty():
    parsed = parse_body(company_file({"id": "j-1", "title": "Baker"}))
    row = parsed.postings.to_dict("records")[0]
    assert row["company"] == "Acme" and row["location"] == "" and row["url"] == ""
    assert row["description"] == "" and row["requirements"] == "[]" and row["posted_date"] is None


def test_text_is_cleaned_and_dates_normalized():
    parsed = parse_body(company_file(job(title="  Head\n Baker ", description="Early\t\tshifts",
                                         postedDate="2026-11-14T09:30:00Z", company=" Acme  Leeds ")))
    row = parsed.postings.to_dict("records")[0]
    assert row["title"] == "Head Baker"
    assert row["description"] == "Early shifts"
    assert row["posted_date"] == "2026-11-14"
    assert row["company"] == "Acme Leeds"


def test_unparseable_posted_date_is_kept_as_written():
    parsed = parse_body(company_file(job(postedDate="2 days ago")))
    assert parsed.postings.loc[0, "posted_date"] == "2 days ago"


def test_values_longer_than_the_store_columns_are_bad_records():
    # jobs.external_id is VARCHAR(255) and jobs.posted_date VARCHAR(32): PostgreSQL refuses longer
    # values and the whole board's apply would fail, so the parser must set such a record aside
    parsed = parse_body(company_file(job(id="x" * 256), job(id="j-2", postedDate="posted " * 10),
                                     job(id="j-3")))
    assert ids(parsed) == ["j-3"]
    assert [b.position for b in parsed.bad_records] == [0, 1]
    assert "id" in parsed.bad_records[0].reason and "255" in parsed.bad_records[0].reason
    assert parsed.bad_records[0].external_id == "x" * 255  # cut to fit bad_records.external_id
    assert "postedDate" in parsed.bad_records[1].reason
    # a long ISO timestamp is still a date; a short free-text date is kept as written
    parsed = parse_body(company_file(job(postedDate="2026-11-14T09:30:00.123456+05:30"),
                                     job(id="j-2", postedDate="x" * 32)))
    assert sorted(parsed.postings["posted_date"]) == ["2026-11-14", "x" * 32]


@pytest.mark.parametrize("raw", ["not a job", None, 42, ["id", "x"]])
def test_non_object_jobs_are_bad_records(raw):
    parsed = parse_body(company_file(raw, job()))
    assert ids(parsed) == ["j-1"]
    assert len(parsed.bad_records) == 1
    assert parsed.bad_records[0].position == 0
    assert parsed.bad_records[0].external_id is None


def test_blank_title_is_a_bad_record():
    parsed = parse_body(company_file(job(title="   ")))
    assert parsed.found == 0
    assert "title" in parsed.bad_records[0].reason


def test_empty_jobs_list_is_an_empty_snapshot():
    parsed = parse_body(company_file())
    assert parsed.found == 0 and parsed.bad_records == []
    assert list(parsed.postings.columns) == list(POSTING_COLUMNS)


@given(st.one_of(st.none(), st.text(), st.lists(st.text().filter(lambda t: "\x00" not in t))))
def test_requirements_json_is_the_json_of_the_cleaned_list(requirements):
    # one requirement may come as a string; an empty one means none
    listed = [requirements] if isinstance(requirements, str) and requirements else requirements or []
    if "\x00" in "".join(listed):
        with pytest.raises(ValueError, match="NUL"):
            requirements_json(requirements)
        return
    encoded = requirements_json(requirements)
    assert encoded == json.dumps([clean_text(r) for r in listed], ensure_ascii=False)
    assert json.loads(encoded) == [clean_text(r) for r in listed]


# --- a chunk is built a column at a time: the same as one job at a time ---------------------------

_WORDS = st.sampled_from(["Baker", "  Baker ", "baker", "Cafe\u0301", "Caf\u00e9", "a\u00a6", "\u00a6 b", "x\ty",
                          "", "a\x00b", "Leeds", "\u6771\u4eac"])
_RAW_JOB = st.one_of(
    st.fixed_dictionaries({"title": st.one_of(_WORDS, st.none(), st.integers())}, optional={
        "id": st.one_of(st.sampled_from(["j-1", "j-2", " j-3 ", "", "x" * 300]), st.integers(0, 3), st.none()),
        "company": st.one_of(_WORDS, st.none()),
        "location": _WORDS,
        "url": st.sampled_from(["https://acme.example/1", "", "a\x00"]),
        "description": _WORDS,
        "requirements": st.one_of(st.none(), _WORDS, st.lists(_WORDS, max_size=3), st.lists(st.integers(), max_size=2)),
        "postedDate": st.sampled_from(["2026-11-20T06:00:00Z", "2026-11-20", "3 days ago", "x" * 40, ""]),
        "isActive": st.sampled_from([True, False, "false", "yes", "maybe"])}),
    st.sampled_from([None, "not a job", 42, ["id"]]))


@given(st.lists(_RAW_JOB, max_size=12))
def test_a_chunk_gives_what_its_jobs_give_one_at_a_time(records):
    together = JobNormalizer("Acme")
    frame = together.frame(records)
    alone = JobNormalizer("Acme")
    frames = [alone.frame([raw], start=position) for position, raw in enumerate(records)]
    expected = pd.concat(frames, ignore_index=True) if frames else frame
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), expected.reset_index(drop=True))
    assert together.bad_records == alone.bad_records
    assert together.duplicates == alone.duplicates and together.inactive == alone.inactive


def test_bad_records_of_every_kind_in_one_chunk_keep_their_positions_and_reasons():
    records = [job(id="a"), job(id="b", title=""), job(id="c", postedDate="x" * 40), job(id="d"),
               job(id="e", requirements=["a\x00"]), "not a job", job(id="f", url="u\x00"), job(id="a")]
    normalizer = JobNormalizer("Acme")
    frame = normalizer.frame(records, start=100)
    assert frame["external_id"].tolist() == ["a", "d"]
    assert [(r.position, r.external_id) for r in normalizer.bad_records] == [
        (101, "b"), (102, "c"), (104, "e"), (105, None), (106, "f")]
    reasons = [r.reason for r in normalizer.bad_records]
    assert "title" in reasons[0] and "postedDate" in reasons[1] and "requirements" in reasons[2]
    assert reasons[4] == "url: contains a NUL character"
    assert normalizer.duplicates == ["a"]


def _outcome(convert, value):
    try:
        return convert(value)
    except ValueError as exc:
        return ("refused", str(exc))


def _outcomes(values):
    return [("refused", str(v)) if isinstance(v, ValueError) else v for v in values]


@given(st.lists(st.one_of(st.none(), _WORDS, st.lists(_WORDS, max_size=4)), max_size=30))
def test_requirements_column_is_requirements_json_of_each_value(values):
    assert _outcomes(requirements_column(values)) == [_outcome(requirements_json, value) for value in values]


@given(st.lists(st.sampled_from([None, "", "2026-11-20T06:00:00Z", "2026-11-20", "3 days ago", "x" * 40]), max_size=20))
def test_posted_date_column_is_posted_date_of_each_value(values):
    assert _outcomes(posted_date_column(values)) == [_outcome(posted_date, value) for value in values]


def test_a_chunk_larger_than_a_batch_is_built_in_slices_with_the_same_outcome(monkeypatch):
    from jobsync_pipeline.sources import collect

    records = [job(id="a"), job(id="b", title=""), job(id="c", isActive=False), "not a job", job(id="a"),
               job(id="c"), job(id="d", postedDate="x" * 40), job(id="e"), job(id="f", requirements="Rust")]
    whole = JobNormalizer("Acme")
    expected = whole.frame(records, start=10)
    monkeypatch.setattr(collect, "BATCH_RECORDS", 2)
    sliced = JobNormalizer("Acme")
    pd.testing.assert_frame_equal(sliced.frame(records, start=10), expected)
    assert expected["external_id"].tolist() == ["a", "e", "f"]
    assert [r.position for r in sliced.bad_records] == [r.position for r in whole.bad_records] == [11, 13, 16]
    assert sliced.duplicates == whole.duplicates == ["a", "c"] and sliced.inactive == whole.inactive == 1


# --- jobs given as JSON texts: msgspec's fast path gives what the decoded jobs give ----------------

_ODD_TEXT = st.one_of(
    _WORDS,
    st.sampled_from([" x", "x ", "\u00a0x\u2003", "\x1cx\x1c", "\x85", "\u3000", "\u180ex", "\u2000a\u2001",
                     "\t", "\ufeffx", "e\u0301", "\U0001f600", "Ã©", "\x00", "  a  b  ", "\u200b", ""]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6))
_TEXT_JOB = st.one_of(
    st.fixed_dictionaries({"title": st.one_of(_ODD_TEXT, st.none(), st.integers(), st.floats(allow_nan=False))},
                          optional={
        "id": st.one_of(_ODD_TEXT, st.sampled_from(["j-1", " j-1 ", "x" * 255, " " + "x" * 255, "x" * 256]),
                        st.integers(-3, 3), st.integers(10**17, 10**19), st.floats(allow_nan=False), st.booleans(),
                        st.none()),
        "company": st.one_of(_ODD_TEXT, st.none(), st.integers()),
        "location": st.one_of(_ODD_TEXT, st.none()),
        "url": st.one_of(_ODD_TEXT, st.sampled_from(["https://acme.example/1", " https://acme.example/1\u2029"])),
        "description": st.one_of(_ODD_TEXT, st.none(), st.lists(_WORDS, max_size=1)),
        "requirements": st.one_of(st.none(), _ODD_TEXT, st.lists(_ODD_TEXT, max_size=3),
                                  st.lists(st.integers(), max_size=2), st.just({})),
        "postedDate": st.one_of(st.sampled_from(["2026-11-20T06:00:00Z", " 2026-11-20 ", "2026-11-20\x1c",
                                                 "3 days ago", "x" * 40, " " + "x" * 32 + " ", ""]), st.integers()),
        "isActive": st.sampled_from([True, False, "false", "yes", "maybe", None, 1]),
        "extra": st.sampled_from([None, [1, {"a": 2}], "x"])}),
    st.sampled_from([None, "not a job", 42, ["id"], [], {}]))


def _text_of(record, style: int) -> str:
    """A record's JSON text, written in one of a few ways a scraper might."""
    if style == 0:
        return json.dumps(record, ensure_ascii=False)
    if style == 1:
        return json.dumps(record) + "\r\n"  # escaped non-ASCII, CRLF
    return " " + json.dumps(record, separators=(",", ":"), ensure_ascii=False)


_BROKEN_TEXTS = st.sampled_from(['{"title": "a"', '', 'nul', '{"title": "a"} x', '{"title": NaN, "id": 1}',
                                 '{"title": "\\ud800"}', '{"title": "\\ud83d\\ude00", "id": Infinity}',
                                 '{"title": "a", "title": "b"}', '{"title": "a\tb"}', '{"ti\\u0074le": "x"}',
                                 '\ufeff{"title": "a"}', '{"title": "a", "id": 1.0}', '{"title": "a", "id": -0}',
                                 '[' * 100 + ']' * 100, '{"title": "a", "id": 1e2}'])


class _DecodedFirst(JobNormalizer):
    """The same normalizer, with every text decoded by json.loads and validated as a decoded job."""

    def build_encoded(self, texts):
        return PostingCollector.build_encoded(self, texts)


@given(st.lists(st.one_of(st.tuples(_TEXT_JOB, st.integers(0, 2)).map(lambda pair: _text_of(*pair)), _BROKEN_TEXTS),
                max_size=12), st.booleans())
def test_jobs_as_json_texts_give_the_same_postings_hashes_and_refusals_either_way(texts, as_bytes):
    if as_bytes:
        texts = [text.encode("utf-8", "surrogatepass") for text in texts]
    fast, slow = JobNormalizer("Acme"), _DecodedFirst("Acme")
    frame = fast.frame_texts(texts, start=7)
    pd.testing.assert_frame_equal(frame, slow.frame_texts(texts, start=7))
    assert fast.bad_records == slow.bad_records
    assert fast.duplicates == slow.duplicates and fast.inactive == slow.inactive and fast.repaired == slow.repaired


@given(st.lists(_TEXT_JOB, max_size=12))
def test_jobs_as_json_texts_give_what_the_decoded_jobs_give(records):
    texts = [json.dumps(record, ensure_ascii=False) for record in records]
    fast, decoded = JobNormalizer("Acme"), JobNormalizer("Acme")
    pd.testing.assert_frame_equal(fast.frame_texts(texts), decoded.frame([json.loads(t) for t in texts]))
    assert fast.bad_records == decoded.bad_records
    assert fast.duplicates == decoded.duplicates and fast.inactive == decoded.inactive


def test_a_text_that_is_not_json_is_a_bad_record_with_its_reason():
    texts = ['{"id": "a", "title": "Baker"}', '{"id": "b", "title": ', b'{"id": "c", "title": "\xff"}',
             '{"id": "d", "title": "  "}', '{"id": "e", "title": "Cook", "isActive": "no"}', "[" * 5000 + "]" * 5000]
    normalizer = JobNormalizer("Acme")
    frame = normalizer.frame_texts(texts, start=10)
    assert frame["external_id"].tolist() == ["a"]
    assert normalizer.inactive == 1
    assert [(r.position, r.reason, r.external_id) for r in normalizer.bad_records] == [
        (11, "record: not valid JSON (Expecting value at column 22)", None),
        (12, "record: not UTF-8 text (invalid start byte at byte 22)", None),
        (13, "title: String should have at least 1 character", "d"),
        (15, "record: not usable JSON (nested too deeply)", None)]
    assert normalizer.bad_records[0].record == json.dumps('{"id": "b", "title": ')


_JSON_ODD = st.one_of(_ODD_TEXT, st.sampled_from(['"q"', "a\\b", "\x7f", "\u2028"]))


@given(st.lists(st.one_of(st.none(), _ODD_TEXT, st.lists(_JSON_ODD, max_size=4)), max_size=30))
def test_requirements_column_of_odd_texts_is_requirements_json_of_each_value(values):
    assert _outcomes(requirements_column(values)) == [_outcome(requirements_json, value) for value in values]


@given(st.lists(_TEXT_JOB, max_size=8), st.sampled_from(["Acme", " Acme\u00a0", "", None, 5]),
       st.sampled_from(["2026-11-20T06:00:00Z", "2026-11-20T06:00:00", "soon", None]), st.booleans())
def test_a_file_read_by_msgspec_parses_as_one_read_by_python(records, company, scraped_at, bom):
    import msgspec

    from jobsync_pipeline.sources import company_files

    document = {"jobs": records, **({} if company is None else {"company": company}),
                **({} if scraped_at is None else {"scrapedAt": scraped_at})}
    body = (b"\xef\xbb\xbf" if bom else b"") + json.dumps(document, ensure_ascii=False).encode("utf-8")
    payload = RawPayload(board="acme", location="acme.json", body=body, fetched_at=datetime.now(timezone.utc))

    def outcome():
        try:
            parsed = parse_company_file(payload)
        except BoardError as exc:
            return str(exc)
        return parsed.postings, (parsed.bad_records, parsed.duplicates, parsed.inactive, parsed.display_name,
                                 parsed.snapshot_at, parsed.repaired)

    fast = outcome()

    def refuse(body):
        raise msgspec.DecodeError("as if msgspec refused it")

    original, company_files._decode_file = company_files._decode_file, refuse
    try:
        slow = outcome()
    finally:
        company_files._decode_file = original
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
    else:
        pd.testing.assert_frame_equal(fast[0], slow[0])
        assert fast[1] == slow[1]


def test_white_space_is_what_pydantic_strips():
    from jobsync_pipeline.sources.company_files import WHITE_SPACE, _validate_job

    for code in [*range(0x3100), 0xFEFF, 0x180E, 0x200B]:
        value = f"{chr(code)}x{chr(code)}"
        if 0xD800 <= code < 0xE000:
            continue
        assert _validate_job({"title": "a", "url": value})["url"] == value.strip(WHITE_SPACE), hex(code)


# --- known records: a job recognised by its record's digest is what parsing the record gives ---------

def _known_from(frame: pd.DataFrame) -> KnownRecords:
    """What Store.known_records gives after `frame`'s postings were written with their digests."""
    written = frame[~frame["known"]]
    return KnownRecords.of(written["record_hash"], written["external_id"], written["content_hash"])


def _diff_view(frame: pd.DataFrame) -> list[tuple[str, int]]:
    """What the diff reads of a frame: each posting's id and content hash."""
    return sorted(zip(frame["external_id"], frame["content_hash"].tolist()))


@settings(suppress_health_check=[HealthCheck.too_slow])  # two lists of odd jobs per example
@given(st.lists(st.tuples(_TEXT_JOB, st.integers(0, 2)).map(lambda pair: _text_of(*pair)), max_size=10),
       st.lists(st.one_of(st.tuples(_TEXT_JOB, st.integers(0, 2)).map(lambda pair: _text_of(*pair)), _BROKEN_TEXTS),
                max_size=10), st.randoms(use_true_random=False))
def test_known_records_give_the_postings_hashes_and_refusals_of_parsing_them_all(before, added, rng):
    """A snapshot parsed with the known records of an earlier one (some of its texts again, shuffled among
    new ones, some twice) lists the same ids with the same hashes, and refuses and drops the same records."""
    known = _known_from(JobNormalizer("Acme").frame_texts(before, known=KnownRecords.none()))
    texts = [*rng.sample(before, k=rng.randint(0, len(before))), *added, *rng.sample(before, k=min(2, len(before)))]
    rng.shuffle(texts)
    recognising, parsing = JobNormalizer("Acme"), JobNormalizer("Acme")
    frame = recognising.frame_texts(texts, start=3, known=known)
    full = parsing.frame_texts(texts, start=3)
    assert _diff_view(frame) == _diff_view(full)
    assert recognising.bad_records == parsing.bad_records
    assert recognising.duplicates == parsing.duplicates and recognising.inactive == parsing.inactive
    # a recognised row is one of the known jobs, unchanged; every other row is parsed in full
    for row in frame[frame["known"]].itertuples():
        at = known.find(np.array([row.record_hash]))[0]
        assert (known.external_ids[at], known.content_hashes[at]) == (row.external_id, row.content_hash)
    parsed = frame[~frame["known"]].drop(columns=["record_hash", "known"]).set_index("external_id")
    pd.testing.assert_frame_equal(parsed, full.set_index("external_id").loc[parsed.index])


def test_a_known_record_is_recognised_only_by_the_normalizer_of_the_same_company():
    texts = ['{"id": "a", "title": "Baker"}', '{"title": "Cook"}']
    known = _known_from(JobNormalizer("Acme").frame_texts(texts, known=KnownRecords.none()))
    assert JobNormalizer("Acme").frame_texts(texts, known=known)["known"].tolist() == [True, True]
    # the id-less cook's fallback id and company come from the file's company: another company, another job
    assert JobNormalizer("Bolt").frame_texts(texts, known=known)["known"].tolist() == [False, False]


def test_a_changed_or_reformatted_record_is_parsed_again():
    known = _known_from(JobNormalizer("Acme").frame_texts(['{"id": "a", "title": "Baker"}'], known=KnownRecords.none()))
    frame = JobNormalizer("Acme").frame_texts(['{"id": "a", "title": "Baker II"}', ], known=known)
    assert frame["known"].tolist() == [False] and frame["title"].tolist() == ["Baker II"]
    spaced = JobNormalizer("Acme").frame_texts(['{"id": "a",  "title": "Baker"}'], known=known)
    assert spaced["known"].tolist() == [False] and spaced["title"].tolist() == ["Baker"]


def test_a_company_file_parsed_with_known_records_recognises_its_unchanged_jobs():
    first = parse_fixture("snapshot_1", "amberline-freight")
    assert "known" not in first.postings  # parsed without known records: postings as they always were
    body = (SAMPLE_BUCKET / "snapshot_1" / "amberline-freight.json").read_bytes()
    payload = RawPayload(board="amberline-freight", location="x", body=body, fetched_at=datetime.now(timezone.utc))
    written = parse_company_file(payload, known=KnownRecords.none())
    again = parse_company_file(payload, known=_known_from(written.postings))
    assert again.postings["known"].all() and again.found == first.found
    assert _diff_view(again.postings) == _diff_view(first.postings)


def test_the_normalizer_fingerprint_covers_the_code_that_normalizes():
    from jobsync_pipeline.sources import collect

    fingerprint = collect.normalizer_fingerprint()
    assert fingerprint == collect.normalizer_fingerprint()
    collect.normalizer_fingerprint.cache_clear()
    original = Path.read_bytes
    edited = Path(collect.__file__).resolve().parent.parent / "core" / "normalize.py"
    try:
        Path.read_bytes = lambda self: original(self) + (b"# changed" if self == edited else b"")
        assert collect.normalizer_fingerprint() != fingerprint
    finally:
        Path.read_bytes = original
        collect.normalizer_fingerprint.cache_clear()
    assert collect.normalizer_fingerprint() == fingerprint
