"""What the four API parsers make of real payloads: per source, how many recorded postings end up with a
salary, a workplace, regions and a category, and how often the category is right on labelled titles.

    .venv/bin/python benchmarks/payload_quality.py [--fixtures DIR] [--labels FILE]

The payloads are the recorded responses in jobsync_pipeline_tests/fixtures/recorded (see its
SOURCES.md); each is parsed by its source's parser and derived as the store would write it
(`core.enrich.derive`). Run it from an older checkout (PYTHONPATH pointing there) to compare.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from jobsync_pipeline.core.categories import categorize
from jobsync_pipeline.core.enrich import derive
from jobsync_pipeline.core.models import RawPayload
from jobsync_pipeline.sources.greenhouse import parse_greenhouse
from jobsync_pipeline.sources.himalayas import parse_himalayas
from jobsync_pipeline.sources.lever import parse_lever
from jobsync_pipeline.sources.remoteok import parse_remoteok

TESTS = Path(__file__).resolve().parent.parent / "jobsync_pipeline_tests"
# how each source's connector archives a payload: Lever and Himalayas as a JSON array of their pages
PARSERS = {
    "greenhouse": (parse_greenhouse, lambda body: body),
    "lever": (parse_lever, lambda body: b"[" + body + b"]"),
    "remoteok": (parse_remoteok, lambda body: body),
    "himalayas": (parse_himalayas, lambda body: b"[" + body + b"]"),
}


def parsed_rows(fixtures: Path, source: str) -> tuple[pd.DataFrame, int, int]:
    """Every posting of the source's recorded files as the store would write it, the bad records and
    the text repairs."""
    parse, archived = PARSERS[source]
    frames, bad, repaired = [], 0, 0
    for path in sorted((fixtures / source).glob("*.json")):
        payload = RawPayload(board=path.name.split(".")[0].lower(), location=str(path),
                             body=archived(path.read_bytes()), fetched_at=datetime.now(timezone.utc))
        parsed = parse(payload)
        frames.append(parsed.postings)
        bad += len(parsed.bad_records)
        repaired += getattr(parsed, "repaired", 0)
    rows = pd.concat(frames, ignore_index=True)
    return pd.concat([rows, derive(rows)], axis=1), bad, repaired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=TESTS / "fixtures" / "recorded")
    parser.add_argument("--labels", type=Path, default=TESTS / "data" / "labelled_titles.jsonl")
    args = parser.parse_args()

    print(f"{'source':<11} {'postings':>8} {'bad':>4} {'salary':>7} {'workplace':>9} {'regions':>8} "
          f"{'category':>8} {'repaired':>8}")
    for source in PARSERS:
        rows, bad, repaired = parsed_rows(args.fixtures, source)
        salary = (rows["salary_annual_min"].notna() | rows["salary_annual_max"].notna()).sum()
        print(f"{source:<11} {len(rows):>8} {bad:>4} {salary:>7} {rows['workplace'].notna().sum():>9} "
              f"{rows['workplace_regions'].notna().sum():>8} {(rows['category'] != 'other').sum():>8} {repaired:>8}")
    print("salary: an annual figure; workplace: remote/hybrid/onsite known; regions: at least one; "
          "category: other than 'other'")

    labelled = [json.loads(line) for line in args.labels.read_text().splitlines() if line.strip()]
    right, per_source, clear = Counter(), Counter(), Counter()
    for row in labelled:
        hit = categorize(row["title"], row["tags"], row["department"]) == row["category"]
        per_source[row["source"]] += 1
        right[row["source"]] += hit
        clear["all"] += "note" not in row
        clear["right"] += hit and "note" not in row
    total = sum(right.values())
    print(f"\ncategory accuracy on {len(labelled)} labelled real titles: {total}/{len(labelled)} "
          f"= {total / len(labelled):.1%}  ("
          + ", ".join(f"{s} {right[s]}/{n}" for s, n in per_source.items())
          + f"); on the {clear['all']} the labeller found unambiguous: {clear['right'] / clear['all']:.1%}")


if __name__ == "__main__":
    main()
