"""Dedupe quality: precision and recall of "same job" on a labelled corpus of posting pairs.

The corpus (`jobsync_pipeline_tests/data/dedupe_pairs.jsonl`) holds pairs of postings as the sources
give them (source, title, company, location; Lever's `workplaceType`, Himalayas'
`locationRestrictions`), each labelled `same: true` when the two are one job. Every posting goes
through `core.enrich.derive`, as the store writes it, so the key measured is the key stored. Two
predictions are scored against the labels:

* same dedupe key: the store merges the pair into one canonical job;
* same key or possible duplicate: merged, or recorded in `possible_duplicates` (`core.dedupe.compare`).

Prints TP/FP/FN/TN, precision and recall for each, the same by kind of pair, and every pair the key
gets wrong. Exits non-zero when the key falls below the floors `test_dedupe.py` holds it to.

    .venv/bin/python benchmarks/dedupe_quality.py
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere: the package and its test helpers

from jobsync_pipeline_tests.test_dedupe import CORPUS, confusion, corpus_pairs, judge, stored_keys  # noqa: E402

MIN_PRECISION, MIN_RECALL = 0.98, 0.9  # as test_precision_and_recall_on_the_labelled_corpus


def line(name: str, figures: dict) -> str:
    return (f"{name:<32} precision {figures['precision']:.3f}  recall {figures['recall']:.3f}  "
            f"TP {figures['tp']:>3}  FP {figures['fp']:>3}  FN {figures['fn']:>3}  TN {figures['tn']:>3}")


def main() -> int:
    pairs = corpus_pairs()
    labels = [pair["same"] for pair in pairs]
    verdicts = judge(pairs)
    key = confusion(labels, [same for same, _ in verdicts])
    either = confusion(labels, [either for _, either in verdicts])
    print(f"{CORPUS.relative_to(HERE.parent)}: {len(pairs)} pairs, {sum(labels)} labelled same job")
    print(line("same dedupe key", key))
    print(line("same key or possible duplicate", either))

    print("\nby kind of pair (same dedupe key):")
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_kind[pair["kind"]].append(i)
    for kind, rows in by_kind.items():
        figures = confusion([labels[i] for i in rows], [verdicts[i][0] for i in rows])
        print(f"  {kind:<20} pairs {len(rows):>3}  TP {figures['tp']:>3}  FP {figures['fp']:>3}  "
              f"FN {figures['fn']:>3}  TN {figures['tn']:>3}")

    wrong = [i for i, (label, (same, _)) in enumerate(zip(labels, verdicts)) if label != same]
    if wrong:
        print("\nwhere the key is wrong:")
        keys = stored_keys([posting for i in wrong for posting in (pairs[i]["a"], pairs[i]["b"])])
        for n, i in enumerate(wrong):
            label = "FN" if labels[i] else "FP"
            recorded = ", recorded as a possible duplicate" if labels[i] and verdicts[i][1] else ""
            print(f"  {label} ({pairs[i]['kind']}{recorded})\n     {keys[2 * n]}\n     {keys[2 * n + 1]}")
    return 0 if key["precision"] >= MIN_PRECISION and key["recall"] >= MIN_RECALL else 1


if __name__ == "__main__":
    sys.exit(main())
