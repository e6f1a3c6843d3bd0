"""Column-level dependencies: which columns of an upstream table a node reads (`ColumnUse`, on
its reference), and the table's columns as its lock entry records them (`TableRecord`: a hash
per column and one of its layout). A node's fingerprint takes only the columns it reads, so a
column nobody reads stops at the table's own node. What cannot be analysed reads the whole table.

Pure and shared: the planner selects with it, and a recipe selects the same columns from the
frames it is given (so an analysis that missed a column fails the build, never goes unseen)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mlmake.core.plain import Json

COLUMNS = "columns"  # an output's recorded column hashes: name → hash
LAYOUT = "layout"  # an output's recorded layout hash: its column names in order and its key
SHOWN = 3  # the changed columns a reason names; the others are counted


@dataclass(frozen=True, slots=True)
class ColumnUse:
    """The columns of one upstream table a node reads: those named in `names` (compared
    case-insensitively: a superset is always safe), or every column but `drop`. `layout`:
    the node also depends on the table's column order and key (a model's inputs)."""

    names: frozenset[str] | None = None
    drop: frozenset[str] = frozenset()
    layout: bool = False

    @classmethod
    def named(cls, names: Iterable[str]) -> ColumnUse:
        return cls(names=frozenset(n.casefold() for n in names))


@dataclass(frozen=True, slots=True)
class TableRecord:
    """A table output's columns as its lock entry records them."""

    columns: Mapping[str, str]  # column name → hash of its values (and type)
    layout: str = ""  # hash of the column names in order and the table's key

    @classmethod
    def of(cls, output: Mapping[str, Json]) -> TableRecord | None:
        """The record of an output as the lock holds it; None for one recorded without columns."""
        columns = output.get(COLUMNS)
        if not isinstance(columns, dict) or not all(isinstance(h, str) for h in columns.values()):
            return None
        layout = output.get(LAYOUT)
        return cls({str(c): str(h) for c, h in columns.items()}, layout if isinstance(layout, str) else "")


def select(use: ColumnUse, columns: Iterable[str]) -> list[str] | None:
    """The columns of a table `use` reads, in the table's order; None for the whole table
    (a use that names none of them reads nothing the analysis can see: a `COUNT(*)`)."""
    names = list(columns)
    if use.names is not None:
        chosen = [c for c in names if c.casefold() in use.names]
    else:
        chosen = [c for c in names if c not in use.drop]
    return chosen or None


def column_key(output: str, column: str) -> str:
    """How a column read from an output is named in a fingerprint: `build/datasets/x[age]`."""
    return f"{output}[{column}]"


def layout_key(output: str) -> str:
    return f"{output}.layout"


def read_hashes(use: ColumnUse, output: str, record: TableRecord | None) -> dict[str, str] | None:
    """The fingerprint entries of the columns `use` reads of a recorded output; None when it
    reads the whole table (no column record, nothing selected, or a layout it needs unrecorded)."""
    if record is None or (use.layout and not record.layout):
        return None
    chosen = select(use, record.columns)
    if chosen is None:
        return None
    hashes = {column_key(output, c): record.columns[c] for c in chosen}
    return {**hashes, layout_key(output): record.layout} if use.layout else hashes


def merge(uses: Iterable[ColumnUse | None]) -> ColumnUse | None:
    """One use for a table read through several references: None (the whole table) when any is."""
    found = list(uses)
    if not found or any(u is None for u in found):
        return None
    if len(found) == 1:
        return found[0]
    if all(u is not None and u.names is not None for u in found):
        return ColumnUse(names=frozenset().union(*(u.names or () for u in found if u is not None)),
                         layout=any(u is not None and u.layout for u in found))
    return None


def as_recorded(output: Mapping[str, Json]) -> dict[str, Json]:
    """An output as a lock entry records it, from a run-cache entry (which adds its DVC md5):
    its hash, size and column record."""
    kept = {k: output[k] for k in (COLUMNS, LAYOUT) if k in output}
    return {"hash": output.get("hash", ""), "size": output.get("size", 0), **kept}


def changed_columns(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """`column age` (or `columns age, plan`) when the fingerprint entries of an upstream that
    differ are all columns it reads; '' otherwise (a whole table, or its layout, changed)."""
    keys = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    if not keys or not all(k.endswith("]") and "[" in k for k in keys):
        return ""
    names = [k[k.index("[") + 1:-1] for k in keys]
    if len(names) > SHOWN:
        return f"columns {', '.join(names[:SHOWN])} and {len(names) - SHOWN} more"
    return f"column{'s' if len(names) > 1 else ''} {', '.join(names)}"
