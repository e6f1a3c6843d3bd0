"""Column-level dependencies in the plan: what a node's fingerprint takes of each upstream
table (the hashes of the columns it reads, from the upstream's lock entry, or the table's
whole hash when it reads it whole or its columns were not recorded), and the words `plan`
and `build` say about them. Decided from the lock alone: planning reads no data."""

from __future__ import annotations

import os
from collections.abc import Mapping

from mlmake.core.columns import ColumnUse, TableRecord, merge, read_hashes, select
from mlmake.core.graph import Graph, resolve_ref
from mlmake.core.kind import NodeDecl
from mlmake.state.lock import Entry, Lock


def column_uses(decl: NodeDecl, graph: Graph) -> dict[str, ColumnUse]:
    """Upstream address → the columns the node reads of it, for the tables it reads by column
    (not those it reads whole, by a reference without columns or by naming one of their files)."""
    found: dict[str, list[ColumnUse | None]] = {}
    for ref in decl.refs:
        target = resolve_ref(ref, graph.nodes, decl.address)
        if target is not None:
            found.setdefault(target, []).append(ref.columns)
    paths = [os.path.normpath(p) for p in decl.inputs + decl.code]
    uses: dict[str, ColumnUse] = {}
    for address, refs in found.items():
        use = merge(refs)
        if use is not None and not _names_a_file(graph.nodes[address], paths):
            uses[address] = use
    return uses


def _names_a_file(upstream: NodeDecl, paths: list[str]) -> bool:
    outs = [os.path.normpath(o) for o in upstream.outputs]
    return any(p == o or p.startswith(o + os.sep) for p in paths for o in outs)


def upstream_hashes(entry: Entry | None, outputs: tuple[str, ...], use: ColumnUse | None) -> dict[str, str]:
    """What the fingerprint takes of one upstream node: each output's hash, or for an output
    whose columns are recorded, the hashes of the columns `use` reads."""
    recorded = entry.outputs if entry else {}
    hashes: dict[str, str] = {}
    for out in outputs:
        read = read_hashes(use, out, TableRecord.of(recorded.get(out, {}))) if use is not None else None
        hashes.update(read if read is not None else {out: str(recorded.get(out, {}).get("hash", ""))})
    return hashes


def read_columns(entry: Entry | None, use: ColumnUse | None) -> list[str]:
    """The columns of an upstream's recorded table `use` reads ([] when it reads it whole)."""
    record = _record(entry)
    if use is None or record is None or (use.layout and not record.layout):
        return []
    return select(use, record.columns) or []


def unread_changes(before: Entry | None, after: Entry | None, use: ColumnUse) -> tuple[list[str], list[str]]:
    """(the columns read, the columns changed, added or removed that are not read) between two
    recordings of an upstream table; ([], []) when either has no column record."""
    old, new = _record(before), _record(after)
    read = read_columns(after, use)
    if old is None or new is None or not read:
        return [], []
    changed = [c for c in _union(old.columns, new.columns) if old.columns.get(c) != new.columns.get(c)]
    return read, [c for c in changed if c not in read]


def fresh_note(decl: NodeDecl, graph: Graph, before: Lock, after: Lock) -> str:
    """Why a node whose upstream tables were rebuilt stays up to date, when columns it does
    not read changed: `reads age, plan; changed column email is not read`; '' otherwise."""
    parts = []
    uses = column_uses(decl, graph)
    for address, use in uses.items():
        read, unread = unread_changes(before.get(address), after.get(address), use)
        if unread:
            which = f" of {address}" if len(uses) > 1 else ""
            parts.append(f"reads {', '.join(read)}{which}; changed column{'s' if len(unread) > 1 else ''} "
                         f"{', '.join(unread)} {'are' if len(unread) > 1 else 'is'} not read")
    return "; ".join(parts)


def _record(entry: Entry | None) -> TableRecord | None:
    if entry is None or len(entry.outputs) != 1:
        return None
    return TableRecord.of(next(iter(entry.outputs.values())))


def _union(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))
