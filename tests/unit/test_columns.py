"""Column-level dependencies: the selection (core/columns.py) and what a node's fingerprint
takes of an upstream table (planning/columns.py), from the lock alone."""

from __future__ import annotations

from mlmake.core.columns import ColumnUse, TableRecord, as_recorded, changed_columns, merge, read_hashes, select
from mlmake.planning.columns import read_columns, unread_changes, upstream_hashes
from mlmake.state.fingerprint import Components
from mlmake.state.lock import Entry

OUT = "build/datasets/customers"
RECORD = {"hash": "dir:all", "size": 10, "columns": {"id": "h1", "Age": "h2", "email": "h3"}, "layout": "L"}


def entry(output: dict[str, object]) -> Entry:
    return Entry("fp", "dataset", Components(), {OUT: output})  # type: ignore[dict-item]


def test_named_columns_are_matched_case_insensitively_in_the_table_order() -> None:
    assert select(ColumnUse.named(["age", "ID", "select"]), ["id", "Age", "email"]) == ["id", "Age"]


def test_a_use_that_names_no_column_reads_the_whole_table() -> None:
    assert select(ColumnUse.named(["count"]), ["id", "email"]) is None


def test_a_drop_reads_every_other_column() -> None:
    assert select(ColumnUse(drop=frozenset({"email"})), ["id", "Age", "email"]) == ["id", "Age"]


def test_the_fingerprint_takes_the_hashes_of_the_columns_read() -> None:
    use = ColumnUse.named(["age"])
    assert upstream_hashes(entry(RECORD), (OUT,), use) == {f"{OUT}[Age]": "h2"}


def test_a_use_with_layout_takes_the_layout_too() -> None:
    use = ColumnUse(drop=frozenset({"email"}), layout=True)
    assert read_hashes(use, OUT, TableRecord.of(RECORD)) == {f"{OUT}[id]": "h1", f"{OUT}[Age]": "h2",
                                                             f"{OUT}.layout": "L"}
    assert read_hashes(use, OUT, TableRecord({"id": "h1"})) is None  # no layout recorded: whole table


def test_an_upstream_recorded_without_columns_gives_the_whole_hash_as_before() -> None:
    """A lock written before column hashes were recorded: its readers' fingerprints are unchanged."""
    old = {"hash": "dir:all", "size": 10}
    assert upstream_hashes(entry(old), (OUT,), ColumnUse.named(["age"])) == {OUT: "dir:all"}
    assert upstream_hashes(entry(RECORD), (OUT,), None) == {OUT: "dir:all"}
    assert upstream_hashes(None, (OUT,), ColumnUse.named(["age"])) == {OUT: ""}


def test_several_references_read_the_union_or_the_whole_table() -> None:
    assert merge([ColumnUse.named(["a"]), ColumnUse.named(["b"])]) == ColumnUse.named(["a", "b"])
    assert merge([ColumnUse.named(["a"]), None]) is None
    assert merge([ColumnUse.named(["a"]), ColumnUse(drop=frozenset({"b"}))]) is None


def test_unread_changes_name_what_changed_and_is_not_read() -> None:
    after = {**RECORD, "columns": {"id": "h1", "Age": "h2", "email": "h4", "phone": "h5"}}
    assert unread_changes(entry(RECORD), entry(after), ColumnUse.named(["age", "id"])) == (
        ["id", "Age"], ["email", "phone"])
    assert unread_changes(entry({"hash": "x"}), entry(after), ColumnUse.named(["age"])) == ([], [])
    assert read_columns(entry(after), ColumnUse.named(["age"])) == ["Age"]


def test_changed_columns_name_the_columns_only_when_only_columns_differ() -> None:
    assert changed_columns({f"{OUT}[a]": "1", f"{OUT}[b]": "2"}, {f"{OUT}[a]": "3", f"{OUT}[b]": "2"}) == "column a"
    assert changed_columns({f"{OUT}[a]": "1"}, {f"{OUT}[a]": "3", f"{OUT}[c]": "4"}) == "columns a, c"
    assert changed_columns({}, {f"{OUT}[{c}]": "1" for c in "abcde"}) == "columns a, b, c and 2 more"
    assert changed_columns({OUT: "1"}, {f"{OUT}[a]": "3"}) == ""
    assert changed_columns({f"{OUT}.layout": "1"}, {f"{OUT}.layout": "2"}) == ""


def test_a_restored_output_keeps_its_column_record_without_the_dvc_md5() -> None:
    assert as_recorded({**RECORD, "md5": "m"}) == RECORD
