"""`jobsync status [--json]`: one line per source (healthy, degraded or failing, and why), then the
queues; the same report `operations/sync_health` records."""
from __future__ import annotations

import argparse

from jobsync_pipeline.cli.runtime import ready_store_url
from jobsync_pipeline.cli.searches import _print


def add_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return commands.add_parser("status", help="each source's health and the queues")


def run(args: argparse.Namespace) -> int:
    from jobsync_pipeline.defs.operations import health_report
    from jobsync_pipeline.store.repo import Store

    report = health_report(Store(ready_store_url()))
    _print(args, report, text(report))
    return 0


def text(report: dict) -> str:
    width = max(len(row["source"]) for row in report["sources"])
    lines = []
    for row in report["sources"]:
        rate = f"{row['success_rate_7d']:.0%}" if row["success_rate_7d"] is not None else "-"
        p95 = f"{row['duration_p95_seconds']:.1f}s" if row["duration_p95_seconds"] is not None else "-"
        why = f": {'; '.join(row['reasons'])}" if row["reasons"] else ""
        lines.append(f"{row['source']:<{width}}  {row['status']:<8}  {row['boards']} board(s), {rate} of "
                     f"{row['syncs_7d']} sync(s) ok over 7 days, p95 {p95}, {row['active_jobs']} open job(s){why}")
    lines.append("")
    for queue in report["queues"]:
        oldest = queue["oldest_pending_minutes"]
        lines.append(f"queue {queue['queue']}: {queue['pending']} pending"
                     + (f", oldest {oldest:.0f} min" if oldest is not None else ""))
    return "\n".join(lines)
