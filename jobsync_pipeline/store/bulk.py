"""Bulk loading: rows in and out of the database set-based (COPY on PostgreSQL, one executemany of plain
tuples on SQLite), without a SQLAlchemy row object per row."""
from __future__ import annotations

import itertools
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

# Elsewhere than PostgreSQL (which COPYs it), a board's stored state is fetched this many rows at a time.
STATE_BATCH = 50_000
# On PostgreSQL, a board's state of at most this many rows is read as the driver's rows, not by COPY.
SMALL_READ = 2_000


def read_columns(conn: sa.Connection, query: sa.Select, flags: int, integers: int = 1,
                 params: dict[str, Any] | None = None) -> list:
    """A board-wide query's columns (ids, `integers` 64-bit integers never NULL, then `flags` booleans), read
    the fastest way the connection has: COPY on PostgreSQL (psycopg2), one text per column on SQLite.

    On PostgreSQL a board of at most `SMALL_READ` rows (most boards) is read as the driver's rows, by the
    query limited to one row more: COPY's file and CSV reader cost a millisecond whatever the size, three
    times a small board's read. A larger board is then read again, whole, by COPY. `params`: the values of
    the query's bound parameters (a query built once and run for many boards)."""
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
        # through SQLAlchemy, whose compiled statements are cached (compiling it anew each time cost more)
        rows = conn.execute(_limited(query), params).all()
        if len(rows) <= SMALL_READ:
            return _row_columns(rows, flags, integers)
        del rows
        return copied_columns(conn, query, flags, integers, params)
    return fetched_columns(conn, query, flags, integers, params)


@lru_cache(maxsize=64)
def _limited(query: sa.Select) -> sa.Select:
    """`query` limited to one row more than a small read: the same object for the same query, whose cache
    key SQLAlchemy then computes once."""
    return query.limit(SMALL_READ + 1)


def _row_columns(rows: list, flags: int, integers: int) -> list:
    if not rows:
        return _no_columns(flags, integers)
    ids, *columns = zip(*rows)
    return [list(ids), *(np.array(column, dtype="int64" if n < integers else bool) for n, column in enumerate(columns))]


def _no_columns(flags: int, integers: int) -> list:
    return [[], *(np.zeros(0, dtype="int64") for _ in range(integers)), *(np.zeros(0, dtype=bool) for _ in range(flags))]


def fetched_columns(conn: sa.Connection, query: sa.Select, flags: int, integers: int = 1,
                    params: dict[str, Any] | None = None) -> list:
    """`read_columns` through the driver's rows (on SQLite, one text per column when it can)."""
    if conn.dialect.name == "sqlite":
        concatenated = _concatenated_columns(conn, query, flags, integers, params)
        if concatenated is not None:
            return concatenated
    ids: list[str] = []
    columns: list[list[np.ndarray]] = [[] for _ in range(integers + flags)]
    for batch in driver_batches(conn, query, STATE_BATCH, params):
        batch_ids, *batch_columns = zip(*batch)
        ids.extend(batch_ids)
        for n, (column, values) in enumerate(zip(columns, batch_columns)):
            # flags are never NULL (every flag ANDs non-null terms, false AND NULL is false); 0/1 on SQLite
            column.append(np.fromiter(values, dtype="int64" if n < integers else bool, count=len(batch)))
    return [ids, *(np.concatenate(c) if c else np.zeros(0, dtype="int64" if n < integers else bool)
                   for n, c in enumerate(columns))]


_ID_SEPARATOR = "\x1f"


def _concatenated_columns(conn: sa.Connection, query: sa.Select, flags: int, integers: int,
                          params: dict[str, Any] | None = None) -> list | None:
    """`fetched_columns` on SQLite, each column read as one text (group_concat) and split: a third of the
    time of a tuple per row. The aggregates of one query step through the same rows, so the texts line
    up; None when they cannot be split apart again (an id holding the separator), or are too long."""
    try:
        count, *texts = conn.execute(_concatenated(query), params).one()
    except sa.exc.DataError:  # string or blob too big
        return None
    if not count:
        return _no_columns(flags, integers)
    ids = texts[0].split(_ID_SEPARATOR)
    if len(ids) != count:
        return None
    numbers = [np.array(text.split(","), dtype=np.int64) for text in texts[1:]]
    if any(len(column) != count for column in numbers):
        return None  # a NULL (group_concat skips it): the query must not have one
    return [ids, *numbers[:integers], *(column.astype(bool) for column in numbers[integers:])]


@lru_cache(maxsize=64)
def _concatenated(query: sa.Select) -> sa.Select:
    """`_concatenated_columns`' statement of `query` (built once per query object, as `_limited`)."""
    rows = query.subquery()
    columns = [sa.func.group_concat(rows.c[rows.c.keys()[0]], _ID_SEPARATOR)]
    columns += [sa.func.group_concat(rows.c[key]) for key in rows.c.keys()[1:]]
    return sa.select(sa.func.count(), *columns).select_from(rows)


def copied_columns(conn: sa.Connection, query: sa.Select, flags: int, integers: int = 1,
                   params: dict[str, Any] | None = None) -> list:
    """What `fetched_columns` gives, through COPY … TO STDOUT as CSV parsed by pandas' C reader:
    a million rows in a fraction of the time of as many driver tuples."""
    from psycopg2.extensions import encodings

    statement, params = _driver_statement(conn, query, params)
    numbers = [f"integer_{n}" for n in range(integers)]
    names = ["external_id", *numbers, *(f"flag_{n}" for n in range(flags))]
    encoding = encodings[conn.connection.dbapi_connection.encoding]  # the client encoding, as Python names it
    # to a file, not memory, so a large board's state is not held twice; a plain file's write is C code,
    # where a SpooledTemporaryFile's costs a Python call per row (2.8 s of two reads of a million rows)
    with conn.connection.cursor() as cursor, tempfile.TemporaryFile() as spool:
        select = cursor.mogrify(statement, params).decode(encoding)
        cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", spool)
        if not spool.tell():
            return _no_columns(flags, integers)
        spool.seek(0)
        # ids stay text exactly as stored ("007", "NA", "1e5", quoted commas and newlines)
        frame = pd.read_csv(spool, header=None, names=names, encoding=encoding, keep_default_na=False,
                            na_filter=False, dtype={"external_id": object, **dict.fromkeys(numbers, "int64")},
                            true_values=["t"], false_values=["f"])
    return [frame["external_id"].tolist(), *(frame[name].to_numpy() for name in numbers),
            *(frame[name].to_numpy(dtype=bool) for name in names[1 + integers:])]


def _driver_statement(conn: sa.Connection, query: sa.Select, values: dict[str, Any] | None = None) -> tuple[str, Any]:
    """`query` as the driver's SQL and parameters (bound values, or `values` for them, processed as
    SQLAlchemy would)."""
    compiled = query.compile(dialect=conn.dialect)
    params = {}
    for name, value in compiled.construct_params(values).items():
        process = compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        params[name] = process(value) if process else value
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup)
    return str(compiled), params


def driver_batches(conn: sa.Connection, query: sa.Select, size: int, values: dict[str, Any] | None = None):
    """The rows of `query` as the driver's plain tuples, `size` at a time: a million SQLAlchemy rows
    would cost seconds. Only for columns whose types need no result processing (strings, integers,
    booleans)."""
    statement, params = _driver_statement(conn, query, values)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement, params)
        while batch := cursor.fetchmany(size):
            yield batch
    finally:
        cursor.close()


def bulk_insert(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, **constants) -> None:
    """Insert a frame's rows (plus constant columns) into `table` set-based: COPY on PostgreSQL
    (psycopg2), one executemany of plain tuples on SQLite, SQLAlchemy's executemany elsewhere."""
    encode_insert(conn.dialect, table, frame, **constants).send(conn)


@dataclass(frozen=True)
class EncodedInsert:
    """`bulk_insert`'s rows, encoded for the driver (`encode_insert`) and not yet sent: the encoding
    needs no connection, so it can be done on another thread while the connection sends earlier rows."""

    target: str  # the table, quoted
    names: list[str]
    rows: Any  # COPY's columns of text (PostgreSQL), tuples (SQLite), or records (elsewhere: `insert`)
    copy: bool = False
    insert: sa.Insert | None = None

    def with_first_column(self, name: str, values: list) -> "EncodedInsert":
        """The same rows with a column more, first (COPY only): values known only when sending, such as
        ids taken from a sequence."""
        assert self.copy, "only COPY's columns can take a column"
        return EncodedInsert(self.target, [name, *self.names], [[_copy_value(v) for v in values], *self.rows],
                             copy=True)

    def send(self, conn: sa.Connection) -> None:
        preparer = conn.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(name) for name in self.names)
        if self.copy:
            with conn.connection.cursor() as cursor:
                cursor.copy_expert(f"COPY {self.target} ({columns}) FROM STDIN",
                                   _LineReader(map("\t".join, zip(*self.rows))), size=_COPY_BLOCK)
        elif self.insert is None:
            conn.exec_driver_sql(f"INSERT INTO {self.target} ({columns}) "
                                 f"VALUES ({', '.join('?' for _ in self.names)})", self.rows)
        else:
            conn.execute(self.insert, self.rows)


def encode_insert(dialect: sa.Dialect, table: sa.Table, frame: pd.DataFrame, **constants) -> EncodedInsert:
    """`bulk_insert`'s rows for `dialect`'s driver, to be sent by `EncodedInsert.send`."""
    names = [*frame.columns, *constants]
    target = dialect.identifier_preparer.format_table(table)
    if (dialect.name, dialect.driver) == ("postgresql", "psycopg2"):
        columns = [_copy_column(values) for values in _frame_columns(frame)]
        columns += [itertools.repeat(_copy_value(value), len(frame)) for value in constants.values()]
        return EncodedInsert(target, names, columns, copy=True)
    if dialect.name == "sqlite":
        columns = []
        for name, values in zip(frame.columns, _frame_columns(frame)):
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            # only for types SQLite stores in a form of SQLAlchemy's (datetimes); not for text and numbers
            if process is not None and not isinstance(table.c[name].type, (sa.String, sa.Integer, sa.Float)):
                values = [None if value is None else process(value) for value in values]
            columns.append(values)
        for name, value in constants.items():
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            columns.append(itertools.repeat(process(value) if process else value, len(frame)))
        return EncodedInsert(target, names, list(zip(*columns)))
    return EncodedInsert(target, names, _records(frame, **constants), insert=table.insert())


def _frame_columns(frame: pd.DataFrame) -> list[list]:
    """A frame's columns as lists of plain Python values (int, float, str, datetime), missing values
    (None, NaN, NA) as None: converted as one block, not column by column (pandas' per-column overhead
    was most of the cost of inserting a board of a few rows)."""
    values = frame.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()  # the frame's own block may be read-only (copy on write)
        values[missing] = None
    return values.T.tolist()


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_BLOCK = 1 << 20


class _LineReader:
    """Lines as a file for `copy_expert`, produced as it reads, so no whole COPY body is held."""

    def __init__(self, lines: Iterable[str]):
        self.lines = iter(lines)

    def read(self, size: int = _COPY_BLOCK) -> str:
        block = list(itertools.islice(self.lines, max(1, size // 512)))
        return "\n".join(block) + "\n" if block else ""


def _copy_value(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        text = "t" if value else "f"
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_column(values: list) -> list[str]:
    """A column in COPY's text format; plain strings without a character to escape pass as they are."""
    try:
        joined = "".join(values)  # raises unless every value is a str
    except TypeError:
        kinds = set(map(type, values))
        if kinds <= _INT_OR_NONE:  # ints, or a column of NULLs (a board's absent details)
            return [r"\N" if value is None else str(value) for value in values]
        if kinds <= _STR_OR_NONE and _COPY_SPECIAL.search("".join(filter(None, values))) is None:
            return [r"\N" if value is None else value for value in values]
        return [_copy_value(value) for value in values]
    return values if _COPY_SPECIAL.search(joined) is None else [_copy_value(value) for value in values]


_INT_OR_NONE = {int, type(None)}
_STR_OR_NONE = {str, type(None)}


def _records(frame: pd.DataFrame, **constants) -> list[dict]:
    records = frame.to_dict("records")
    if constants:
        for record in records:
            record.update(constants)
    return records
