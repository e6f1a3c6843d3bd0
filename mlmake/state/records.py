"""The local record of every node run: a SQLite database in .mlmake/.

A database that is not one (a corrupt file) or carries a format version this mlmake does
not know is moved aside (runs.sqlite.corrupt) and started afresh, with a warning: the
history is local and nothing else depends on it. A full disk or a read-only folder is an
error that says so (exit 1): what was built stays as it was."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlmake.core.errors import MlmakeError
from mlmake.core.workdir import RUNS_DB, VERSIONS, is_no_space, move_aside

_T = TypeVar("_T")
DB_FILE = RUNS_DB
VERSION = VERSIONS[RUNS_DB]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL, fingerprint TEXT NOT NULL,
  status TEXT NOT NULL, started REAL NOT NULL, duration REAL NOT NULL, reasons TEXT NOT NULL,
  params TEXT NOT NULL, metrics TEXT NOT NULL, git_commit TEXT, env TEXT, overrides TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  config TEXT NOT NULL DEFAULT '{}', inputs TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (run_id, node)
);
CREATE INDEX IF NOT EXISTS runs_node ON runs(node, started);
"""


@dataclass(frozen=True)
class Record:
    """One node run."""

    run_id: str
    node: str
    kind: str
    fingerprint: str
    status: str  # built | restored | failed
    started: float
    duration: float
    reasons: list[str]
    params: dict[str, Any]
    metrics: dict[str, Any]
    git_commit: str | None
    env: str | None
    overrides: list[str]
    message: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the node's resolved configuration
    inputs: dict[str, Any] = field(default_factory=dict)  # data and upstream hashes it read


class RunsError(MlmakeError):
    """The run database cannot be written: a full disk, a read-only folder."""


def _use(root: Path, work: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run work on the database and commit; a corrupt database is set aside and started afresh."""
    path = root / DB_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _attempt(path, work)
    except sqlite3.DatabaseError as exc:
        if not _is_corrupt(exc):
            raise _error(exc) from None
        why = str(exc)
    except OSError as exc:
        raise _error(exc) from None
    _set_aside(path, f"not a database this mlmake can read ({why})")
    try:
        return _attempt(path, work)
    except (sqlite3.Error, OSError) as exc:
        raise _error(exc) from None


def _attempt(path: Path, work: Callable[[sqlite3.Connection], _T]) -> _T:
    con = _open(path)
    try:
        result = work(con)
        con.commit()
        return result
    finally:
        con.close()


def _open(path: Path) -> sqlite3.Connection:
    """A connection to a database of this mlmake's format (an unknown version is set aside)."""
    con = sqlite3.connect(path, timeout=30)
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, VERSION):  # 0: new, or written before versions were kept
            con.close()
            _set_aside(path, f"format version {version}, not {VERSION}")
            con = sqlite3.connect(path, timeout=30)
        # nothing is written to a database that is already as it should be (it may be read-only)
        if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone():
            con.executescript(_SCHEMA)
        _migrate(con)
        if version != VERSION:
            con.execute(f"PRAGMA user_version = {VERSION}")
    except BaseException:
        con.close()
        raise
    return con


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc)
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in text or "not a database" in text


def _set_aside(path: Path, why: str) -> None:
    from mlmake.core import terminal

    aside = move_aside(path)
    for extra in ("-journal", "-wal", "-shm"):
        path.with_name(path.name + extra).unlink(missing_ok=True)
    terminal.warn_line(f"{DB_FILE} was {why}; moved it to {aside.name} and started a new run history")


def _error(exc: BaseException) -> RunsError:
    if is_no_space(exc):
        return RunsError(f"cannot record the run in {DB_FILE}: no space left on the device; "
                         "free some space and build again (what was built is kept)")
    return RunsError(f"cannot use {DB_FILE}: {exc}; make .mlmake/ writable, or remove it "
                     "(it holds only this machine's run history and caches)")


_COLUMNS = ("run_id", "node", "kind", "fingerprint", "status", "started", "duration", "reasons", "params",
            "metrics", "git_commit", "env", "overrides", "message", "config", "inputs")
_JSON = ("reasons", "params", "metrics", "overrides", "config", "inputs")  # columns that hold JSON text


def _migrate(con: sqlite3.Connection) -> None:
    """Databases written by an earlier mlmake lack the newer columns."""
    have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    for column in ("config", "inputs"):
        if column not in have:
            con.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT NOT NULL DEFAULT '{{}}'")


def record(root: Path, rec: Record) -> None:
    """Append one run record."""
    values = tuple(_column(name, getattr(rec, name)) for name in _COLUMNS)
    insert = f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    _use(root, lambda con: con.execute(insert, values))


def _column(name: str, value: Any) -> Any:
    """A field as its column stores it: lists and mappings as JSON text."""
    return json.dumps(value, sort_keys=True, default=str) if name in _JSON else value


def history(root: Path, node: str | None = None, limit: int = 50) -> list[Record]:
    """The most recent runs first, optionally of one node."""
    if not (root / DB_FILE).exists():
        return []
    query = f"SELECT {', '.join(_COLUMNS)} FROM runs" + (" WHERE node = ?" if node else "") \
        + " ORDER BY started DESC LIMIT ?"
    args: tuple[Any, ...] = (node, limit) if node else (limit,)
    rows = _use(root, lambda con: con.execute(query, args).fetchall())
    return [_from_row(r) for r in rows]


def by_run(root: Path, run_id: str) -> list[Record]:
    """Every node record of one run (a unique prefix of the run id is enough)."""
    if not (root / DB_FILE).exists():
        return []
    prefix = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY started"
    rows = _use(root, lambda con: con.execute(query, (prefix + "%",)).fetchall())
    if len({r[0] for r in rows}) > 1:
        return []  # ambiguous prefix
    return [_from_row(r) for r in rows]


def _from_row(row: tuple[Any, ...]) -> Record:
    fields = {name: json.loads(value) if name in _JSON else value for name, value in zip(_COLUMNS, row, strict=True)}
    return Record(**fields)


def git_commit(root: Path) -> str | None:
    """HEAD's commit when the project is in a git repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
