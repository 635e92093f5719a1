"""Running many partitions in one run: Dagster takes a key range, so a selection becomes ranges."""
from collections.abc import Sequence

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def contiguous_ranges(ordered: Sequence[str], selected: Sequence[str]) -> list[tuple[str, str]]:
    """The fewest ranges of `ordered` keys covering exactly `selected` (one run per range)."""
    wanted = set(selected)
    ranges, start, previous = [], None, None
    for key in ordered:
        if key in wanted and start is None:
            start = key
        elif key not in wanted and start is not None:
            ranges.append((start, previous))
            start = None
        previous = key
    if start is not None:
        ranges.append((start, previous))
    return ranges


def range_tags(start: str, end: str) -> dict[str, str]:
    return {RANGE_START: start, RANGE_END: end}
