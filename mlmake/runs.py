"""The local record of every node run: a SQLite database in .mlmake/."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DB_FILE = ".mlmake/runs.sqlite"
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
    status: str  # built | failed
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


@contextmanager
def _connect(root: Path) -> Iterator[sqlite3.Connection]:
    path = root / DB_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30)
    try:
        con.executescript(_SCHEMA)
        _migrate(con)
        yield con
        con.commit()
    finally:
        con.close()


_COLUMNS = ("run_id", "node", "kind", "fingerprint", "status", "started", "duration", "reasons", "params",
            "metrics", "git_commit", "env", "overrides", "message", "config", "inputs")


def _migrate(con: sqlite3.Connection) -> None:
    """Databases written by an earlier mlmake lack the newer columns."""
    have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
    for column in ("config", "inputs"):
        if column not in have:
            con.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT NOT NULL DEFAULT '{{}}'")


def record(root: Path, rec: Record) -> None:
    """Append one run record."""
    values = (rec.run_id, rec.node, rec.kind, rec.fingerprint, rec.status, rec.started, rec.duration,
              json.dumps(rec.reasons), json.dumps(rec.params, sort_keys=True), json.dumps(rec.metrics, sort_keys=True),
              rec.git_commit, rec.env, json.dumps(rec.overrides), rec.message,
              json.dumps(rec.config, sort_keys=True, default=str), json.dumps(rec.inputs, sort_keys=True))
    with _connect(root) as con:
        con.execute(f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                    values)


def history(root: Path, node: str | None = None, limit: int = 50) -> list[Record]:
    """The most recent runs first, optionally of one node."""
    if not (root / DB_FILE).exists():
        return []
    query = f"SELECT {', '.join(_COLUMNS)} FROM runs" + (" WHERE node = ?" if node else "") \
        + " ORDER BY started DESC LIMIT ?"
    args: tuple[Any, ...] = (node, limit) if node else (limit,)
    with _connect(root) as con:
        rows = con.execute(query, args).fetchall()
    return [_from_row(r) for r in rows]


def by_run(root: Path, run_id: str) -> list[Record]:
    """Every node record of one run (a unique prefix of the run id is enough)."""
    if not (root / DB_FILE).exists():
        return []
    with _connect(root) as con:
        prefix = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE run_id LIKE ? ESCAPE '\\' "
                           "ORDER BY started", (prefix + "%",)).fetchall()
    if len({r[0] for r in rows}) > 1:
        return []  # ambiguous prefix
    return [_from_row(r) for r in rows]


def _from_row(row: tuple[Any, ...]) -> Record:
    return Record(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]),
                  json.loads(row[8]), json.loads(row[9]), row[10], row[11], json.loads(row[12]), row[13],
                  json.loads(row[14]), json.loads(row[15]))


def git_commit(root: Path) -> str | None:
    """HEAD's commit when the project is in a git repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
