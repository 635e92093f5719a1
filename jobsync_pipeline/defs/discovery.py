"""Discovery: candidate companies probed for public Greenhouse/Lever boards; found boards become partitions.

`probe_candidates` and `read_candidates` use no Dagster (they could live in a pure package); the asset,
the schedule and the board-sensor factory below are the wiring around them.
"""
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
from pydantic import Field

from jobsync_pipeline.core.candidates import token_candidates
from jobsync_pipeline.core.status import BoardStatus
from jobsync_pipeline.defs import console
from jobsync_pipeline.defs.resources import HttpResource, StoreResource
from jobsync_pipeline.settings import DISCOVERY_CANDIDATES
from jobsync_pipeline.sources.base import BoardError
from jobsync_pipeline.sources.greenhouse import GreenhouseConnector
from jobsync_pipeline.sources.http import FetchError
from jobsync_pipeline.sources.lever import LeverConnector
from jobsync_pipeline.store.boards import BoardRegistry

CANDIDATES_FILE = DISCOVERY_CANDIDATES
# Sources whose postings name companies that may also run an ATS board of their own.
POSTING_SOURCES = ("company_files", "remoteok", "himalayas")
_MAX_RESULT_CHARS = 2000


class BoardProbe(Protocol):
    """What probing needs of a connector: fetching a board raises FetchError(status=404) when it is missing."""

    def fetch(self, board: str) -> Any: ...


@dataclass
class ProbeStats:
    probed: int = 0
    found: int = 0
    not_found: int = 0
    errors: int = 0
    revived: int = 0
    boards_added: list[str] = field(default_factory=list)  # "source:board", new or revived
    problems: list[str] = field(default_factory=list)  # one line per candidate or board that erred


def read_candidates(path: Path) -> list[str]:
    """Company names, one a line; blank lines and `#` comment lines skipped. A missing file is no names."""
    if not path.exists():
        return []
    names = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [name for name in names if name and not name.startswith("#")]


def probe_board(connector: BoardProbe, board: str) -> tuple[str, str]:
    """("found" | "not_found" | "error", detail): a 200, even an empty board, means the board exists."""
    try:
        connector.fetch(board)
    except FetchError as exc:
        return ("not_found" if exc.status == 404 else "error"), str(exc)
    except BoardError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - one candidate's trouble never stops the batch
        return "error", f"{type(exc).__name__}: {exc}"
    return "found", board


def probe_company(name: str, connectors: Mapping[str, BoardProbe]) -> tuple[str, dict[str, str], str]:
    """Each source's first token that answers; returns (probe status, {source: token}, result text)."""
    tokens = token_candidates(name)
    if not tokens:
        return "not_found", {}, "no usable board token in the name"
    found: dict[str, str] = {}
    errors: list[str] = []
    for source, connector in connectors.items():
        for token in tokens:
            outcome, detail = probe_board(connector, token)
            if outcome == "found":
                found[source] = token
                break
            if outcome == "error":  # the answer is unknown, not "no": the candidate is asked again later
                errors.append(f"{source}/{token}: {detail}")
                break
    if found:
        text = ", ".join(f"{source}:{token}" for source, token in found.items())
        status = "found"
    elif errors:
        text, status = "", "error"
    else:
        text = f"no board at {', '.join(connectors)} for {', '.join(tokens)}"
        status = "not_found"
    text = "; ".join(filter(None, [text, *errors]))
    return status, found, text[:_MAX_RESULT_CHARS]


def probe_candidates(registry: BoardRegistry, connectors: Mapping[str, BoardProbe], batch_size: int,
                     reprobe_after: timedelta, retired_reprobe_after: timedelta | None = None) -> ProbeStats:
    """Probe a batch of due candidates on every source, register the boards found, record each answer;
    then re-probe each source's retired boards that are due, reviving the ones that answer."""
    stats = ProbeStats()
    for candidate in registry.due_candidates(batch_size, reprobe_after):
        status, found, text = probe_company(candidate.name, connectors)
        stats.probed += 1
        for source, token in found.items():
            stats.boards_added += [f"{source}:{b}" for b in registry.add(source, [token], origin="discovery",
                                                                         display_names={token: candidate.name})]
        if status == "found":
            stats.found += 1
        elif status == "not_found":
            stats.not_found += 1
        else:
            stats.errors += 1
            stats.problems.append(f"{candidate.name}: {text}")
        registry.record_probe(candidate.id, status, text)
    if retired_reprobe_after is None:
        return stats
    for source, connector in connectors.items():
        for board in registry.retired_due(source, retired_reprobe_after, batch_size):
            outcome, detail = probe_board(connector, board)
            if outcome == "found":
                revived = registry.add(source, [board], origin="discovery")
                stats.revived += len(revived)
                stats.boards_added += [f"{source}:{b}" for b in revived]
            else:
                registry.attempted(source, [board])  # asked now: the next ones get their turn first
                if outcome == "error":
                    stats.problems.append(f"{source}/{board} (retired): {detail}")
    return stats


class DiscoveryConfig(dg.Config):
    batch_size: int = Field(default=25, ge=1,
                            description="Candidates probed per run (and retired boards re-probed per source).")
    reprobe_after_days: float = Field(
        default=30, ge=0, description="Ask again about a candidate with no board (or an error) after this many days.")
    retired_reprobe_after_days: float = Field(
        default=30, ge=0, description="Re-probe a retired board this many days after its retirement or last probe.")


@dg.asset(
    key_prefix=["discovery"], group_name="discovery", kinds={"python", "httpx"}, owners=["team:ingest"],
    description="One discovery pass: candidate companies (shipped file, CLI, names in postings) probed for "
                "public Greenhouse and Lever boards, found boards registered and due retired boards re-probed.",
)
def discovered_boards(context: dg.AssetExecutionContext, config: DiscoveryConfig, store: StoreResource,
                      http: HttpResource) -> dg.MaterializeResult:
    started = time.monotonic()
    registry = BoardRegistry(store.store().engine)
    from_file = read_candidates(CANDIDATES_FILE)
    if not from_file:
        context.log.warning(f"no candidates in {CANDIDATES_FILE}")
    added = registry.add_candidates(from_file, origin="file")
    added += registry.add_candidates(registry.companies_in_postings(POSTING_SOURCES), origin="postings")
    with http.client() as client:
        connectors = {"greenhouse": GreenhouseConnector(client, http.base_url("greenhouse")),
                      "lever": LeverConnector(client, http.base_url("lever"))}
        stats = probe_candidates(registry, connectors, config.batch_size,
                                 timedelta(days=config.reprobe_after_days),
                                 timedelta(days=config.retired_reprobe_after_days))
    for problem in stats.problems:
        context.log.warning(problem)
    if stats.boards_added:
        context.log.info(f"boards registered: {', '.join(stats.boards_added)}")
    if stats.probed and stats.errors == stats.probed:  # no answer at all is an outage, not a quiet hour
        raise dg.Failure(description=f"every one of the {stats.probed} probe(s) failed:\n"
                                     + "\n".join(f"- {p}" for p in stats.problems[:20]),
                         metadata={"probed": stats.probed, "errors": stats.errors})
    return dg.MaterializeResult(metadata={
        "candidates_added": added, "probed": stats.probed, "found": stats.found, "not_found": stats.not_found,
        "errors": stats.errors, "revived": stats.revived, "boards_added": len(stats.boards_added),
        "duration_seconds": round(time.monotonic() - started, 3),
        "new_boards": dg.MetadataValue.json(stats.boards_added[:100]),
    })


discovery_probe = dg.ScheduleDefinition(
    name="discovery_probe", target=discovered_boards, cron_schedule="25 * * * *",
    execution_timezone="Europe/London",
    description="Probes a batch of candidate companies for public boards every hour (calls the Greenhouse and "
                "Lever APIs: stopped until the deployment starts it).",
)


def build_board_sensor(source: str, partitions: dg.DynamicPartitionsDefinition,
                       job: Any) -> dg.SensorDefinition:
    """`{source}_board_sensor`: keeps the partitions in step with the registry, both ways. Each syncable
    board not yet a partition becomes one, with a run; a retired board's partition goes.

    `job` is the lane's job (`dg.define_asset_job(...)` or a JobDefinition) or its name.
    """
    target = {"job_name": job} if isinstance(job, str) else {"job": job}

    # stopped by default: its runs call the source's public API (the deployment turns it on)
    @dg.sensor(name=f"{source}_board_sensor", minimum_interval_seconds=120,
               description=f"Keeps the {source} partitions in step with the board registry: each board the "
                           "registry syncs (CLI, seed list, discovery) becomes a partition with one run (run key: "
                           "source:board:added); a retired board's partition is deleted.", **target)
    def board_sensor(context: dg.SensorEvaluationContext, store: StoreResource) -> dg.SensorResult:
        registry = BoardRegistry(store.store().engine)
        syncable = registry.syncable(source)
        known = context.instance.get_dynamic_partitions(partitions.name)
        wanted = set(syncable)
        new = [board for board in syncable if board not in set(known)]
        retired = [board for board in known if board not in wanted and registry.status(source, board) == BoardStatus.RETIRED]
        requests = [partitions.build_add_request(new)] if new else []
        if retired:
            requests.append(partitions.build_delete_request(retired))
            context.log.info(f"retired boards, partitions deleted: {', '.join(retired)}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(partition_key=board, run_key=f"{source}:{board}:added",
                                        run_config=console.RUN_CONFIG) for board in new],
            dynamic_partitions_requests=requests,
            cursor=json.dumps({"boards": len(syncable)}),
        )

    return board_sensor


defs = dg.Definitions(assets=[discovered_boards], schedules=[discovery_probe])
