"""Bulk loading's COPY text (jobsync_pipeline/store/bulk.py); the loads themselves are tested through the store."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobsync_pipeline.store.bulk import _copy_column, _copy_value

_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.sampled_from(["a\tb", "x\\y", "l\nm", "r\r"]),
                    st.booleans(), st.floats(allow_nan=False))


@given(st.lists(_VALUES, max_size=8) | st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=8)
       | st.lists(st.one_of(st.none(), st.integers()), max_size=8))
def test_a_column_in_copy_text_is_each_value_in_copy_text(values):
    assert _copy_column(values) == [_copy_value(value) for value in values]
