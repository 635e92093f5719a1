"""The runs test_pacing starts in processes of their own, configured as production is (the environment
and `build_resources()`, so HttpResource shares the store's pacer):

    python -m jobsync_pipeline_tests.pacing_runs lane BOARD...        a Greenhouse lane run over BOARDs
    python -m jobsync_pipeline_tests.pacing_runs discovery FILE       a discovery run over FILE's candidates

and `reserve_in_process`, the target of test_pacing's reserving processes (a light import for spawn).

With PACING_READY_FILE and PACING_GO_FILE set, a run writes the first once it is ready to fetch and waits
for the second (at most a minute), so the test can line the processes up.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

T = 1_800_000_000.0  # a fixed wall-clock instant: reservations that never sleep, exact slot values


def unique_host() -> str:
    return f"api-{uuid.uuid4().hex[:8]}.example"


def reserve_many(store_url: str, host: str, n: int, barrier) -> list[float]:
    """n reservations at the fixed instant T: the waits are exactly the slots, T + k x 1 s."""
    from jobsync_pipeline.store.pacing import StorePacer

    pacer = StorePacer(store_url, clock=lambda: T)
    pacer.reserve(unique_host(), 1.0)  # the table check and the connection out of the way first
    barrier.wait()
    waits = []
    for _ in range(n):
        waits.append(pacer.reserve(host, 1.0).wait)
        time.sleep(0.005)  # a request's worth of other work: the other reserver gets the lock meanwhile
    return waits


def reserve_in_process(store_url: str, host: str, n: int, barrier, results) -> None:
    results.put((os.getpid(), reserve_many(store_url, host, n, barrier)))


def _line_up() -> None:
    ready, go = os.environ.get("PACING_READY_FILE"), os.environ.get("PACING_GO_FILE")
    if ready:
        Path(ready).touch()
    if go:
        deadline = time.monotonic() + 60
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def lane(boards: list[str]) -> bool:
    import dagster as dg

    from jobsync_pipeline.defs.lanes import build_source_lane
    from jobsync_pipeline.defs.resources import build_resources
    from jobsync_pipeline.defs.run_tags import range_tags
    from jobsync_pipeline.defs.source_specs import GREENHOUSE

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(GREENHOUSE.partitions_name, boards)
    assets = build_source_lane(GREENHOUSE).assets
    resources = build_resources()
    _line_up()
    result = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False,
                            tags=range_tags(boards[0], boards[-1]))
    return result.success


def discovery(candidates: Path) -> bool:
    import dagster as dg

    from jobsync_pipeline.defs import discovery as discovery_module
    from jobsync_pipeline.defs.resources import build_resources

    discovery_module.CANDIDATES_FILE = candidates  # a few names, not the shipped list
    resources = build_resources()
    _line_up()
    result = dg.materialize([discovery_module.discovered_boards], resources=resources, raise_on_error=False,
                            instance=dg.DagsterInstance.ephemeral(),
                            run_config={"ops": {"discovery__discovered_boards": {"config": {"batch_size": 10}}}})
    return result.success


def main(argv: list[str]) -> int:
    what, *args = argv
    ok = lane(args) if what == "lane" else discovery(Path(args[0]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
