"""`jobsync api`: serve the search API and its page (api/app.py) with uvicorn."""
from __future__ import annotations

import argparse


def add_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    api = commands.add_parser("api", help="serve the search API and its page for clients on any device")
    api.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8000, help="the port (default 8000)")
    api.add_argument("--runs-per-minute", type=int, default=10, metavar="N",
                     help="new search runs a user may create per minute (default 10); more get 429")
    return api


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from jobsync_pipeline.api.app import ApiSettings, create_app
    from jobsync_pipeline.cli.runtime import UsageError, ready_store_url
    from jobsync_pipeline.cli.searches import terminate
    from jobsync_pipeline.store.engine import masked
    from jobsync_pipeline.store.repo import Store

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port (1-65535)")
    if args.runs_per_minute < 1:
        raise UsageError("--runs-per-minute must be 1 or more")
    _can_listen(args.host, args.port)
    url = ready_store_url()
    app = create_app(Store(url).searches, ApiSettings(runs_per_minute=args.runs_per_minute), terminate=terminate)
    print(f"jobsync api: http://{args.host}:{args.port}/ (store {masked(url)}); Ctrl-C stops it", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _can_listen(host: str, port: int) -> None:
    """One line, before anything starts, when the address is taken or not this machine's."""
    import socket

    from jobsync_pipeline.cli.runtime import CommandError

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CommandError(f"cannot listen on {host}:{port}: {reason} (another server there? try --port)") from None
