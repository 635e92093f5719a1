"""What a `jobsync` command runs on: the configured resources, the store (its schema checked) and the
Dagster instance; and the errors a user can cause, each as one line."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from jobsync_pipeline import settings
from jobsync_pipeline.store.engine import SchemaOutOfDate, current_revision, engine_for, masked, upgrade


# The instance jobsync makes when run outside the project's folder (an installed package): one run at a
# time per API pool, as the project's dagster.yaml says, and no telemetry.
INSTALLED_INSTANCE = """# written by jobsync: the embedded local instance (SQLite storage in this folder)
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


class UsageError(Exception):
    """The command was asked something it cannot do (exit status 2, like argparse's own)."""


class CommandError(Exception):
    """What went wrong, said in one line a user can act on (exit status 1)."""


@contextmanager
def resources():
    """The configured resources (store, bucket, http, sync_policy), as the lanes get them."""
    import dagster as dg

    from jobsync_pipeline.defs.resources import build_resources

    with dg.build_resources(build_resources()) as built:
        yield built


def ready_store_url() -> str:
    """The store's URL, its schema current: a store jobsync never touched is made (the first command
    may do that), an older one must be upgraded on purpose with `jobsync db upgrade`."""
    url = settings.database_url()
    engine = engine_for(url)
    if current_revision(engine) is None and not sa.inspect(engine).get_table_names():
        upgrade(url)
    return url


def instance():
    """The Dagster instance: $DAGSTER_HOME, else ./.dagster_home (its dagster.yaml a link to the
    project's embedded one when run from the project's folder)."""
    import dagster as dg

    if not os.environ.get(settings.DAGSTER_HOME_VAR):
        home = settings.LOCAL_DAGSTER_HOME.resolve()
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():
            project = Path("dagster.yaml").resolve()
            if project.exists():
                config.symlink_to(project)  # the project's embedded instance, never a copy of it
            else:  # installed without the project's folder: the same essentials, written once
                config.write_text(INSTALLED_INSTANCE)
        os.environ[settings.DAGSTER_HOME_VAR] = str(home)  # for the runs this command launches in-process
    return dg.DagsterInstance.get()


def explain(exc: BaseException) -> str | None:
    """The one line for an error a user can cause, or None for an unexpected one."""
    from jobsync_pipeline.sources.base import BoardError

    url = os.environ.get(settings.DATABASE_URL_VAR, "")
    if isinstance(exc, (CommandError, UsageError, SchemaOutOfDate, BoardError, settings.ConfigError)):
        return _hide(str(exc), url)
    if isinstance(exc, (sa.exc.ArgumentError, sa.exc.NoSuchModuleError)):
        return (f"JOBSYNC_DATABASE_URL={masked(url)!s} is not a database URL jobsync can use ({_first_line(exc)}); "
                "set it to e.g. postgresql://user@host/db or sqlite:///path/to/jobsync.db")
    if isinstance(exc, sa.exc.OperationalError):
        return _hide(f"cannot use the store {masked(settings.database_url())}: {_first_line(exc.orig or exc)}; "
                     "check that the database is up and JOBSYNC_DATABASE_URL is right", url)
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _hide(text: str, url: str) -> str:
    """`text` without the password of `url`, wherever a driver may have echoed it."""
    try:
        password = sa.make_url(url).password if url else None
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        password = None
    return text.replace(password, "***") if password else text
