"""Postings as columns (jobsync_pipeline/core/models.py)."""
from __future__ import annotations

from jobsync_pipeline.core.models import (DETAIL_FIELDS, MAX_ID_LENGTH, POSTING_COLUMNS, Posting, PostingColumns,
                                          PostingDetails, postings_frame)


def posting(external_id: str = "1", details: PostingDetails | None = None, **fields) -> Posting:
    return Posting(source="greenhouse", board="acme", external_id=external_id,
                   **{"title": "Engineer", "company": "Acme", "details": details, **fields})


def test_the_frame_hashes_each_posting_as_its_content_hash():
    plain = [posting("1"), posting("2", posted_date=None, description="Builds things")]
    detailed = [posting("3", PostingDetails(salary_min=100_000.0, salary_currency="EUR", tags='["go"]')),
                posting("4", PostingDetails())]
    for postings in (plain, detailed):
        frame = postings_frame(postings)
        assert list(frame.columns) == list(POSTING_COLUMNS)
        assert frame["content_hash"].tolist() == [p.content_hash for p in postings]
    assert postings_frame(detailed)["salary_min"].tolist() == [100_000.0, None]


def test_storage_problems_name_the_first_problem_of_each_row():
    columns = PostingColumns.from_postings([
        posting("ok"), posting(""), posting("x" * (MAX_ID_LENGTH + 1)), posting("t", title=""),
        posting("n", location="a\x00b"), posting("d", PostingDetails(department="R&\x00D")),
        posting("", title="")])
    assert columns.storage_problems() == {
        1: "external_id: empty", 2: f"external_id: longer than {MAX_ID_LENGTH} characters", 3: "title: empty",
        4: "location: contains a NUL character", 5: "department: contains a NUL character",
        6: "external_id: empty"}
    assert PostingColumns.from_postings([posting("a"), posting("b")]).storage_problems() == {}


def test_take_and_concat_keep_rows_in_order_and_fill_missing_details():
    with_details = PostingColumns.from_postings([posting("a", PostingDetails(department="R&D")), posting("b")])
    nothing = PostingColumns.from_postings([])
    merged = PostingColumns.concat([with_details.take([1]), nothing, with_details.take([0])])
    frame = merged.frame()
    assert frame["external_id"].tolist() == ["b", "a"]
    assert frame["department"].tolist() == [None, "R&D"]
    assert set(DETAIL_FIELDS) <= set(frame.columns)
    assert PostingColumns.concat([nothing]).frame().empty


def _batch(ids: list[str], records: list[int], refused=()) -> PostingColumns:
    batch = PostingColumns.from_postings([Posting("s", "b", i, f"title {i}", "Acme") for i in ids], records,
                                         [True] * len(ids), list(refused))
    return batch


def test_batches_of_disjoint_records_merge_in_record_order_with_their_refusals():
    first = _batch(["a", "c"], [0, 4], [(2, "bad")])
    second = _batch(["b", "d"], [1, 3]).renumbered([10, 11, 12, 13], [(14, "not JSON")])
    assert second.records == [11, 13] and second.refused == [(14, "not JSON")]
    merged = PostingColumns.merge([first, _batch(["b", "d"], [1, 3], [(5, "worse")])])
    assert merged.columns["external_id"] == ["a", "b", "d", "c"] and merged.records == [0, 1, 3, 4]
    assert merged.columns["title"] == ["title a", "title b", "title d", "title c"]
    assert merged.refused == [(2, "bad"), (5, "worse")]
