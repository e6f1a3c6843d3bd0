"""mlmake/fingerprint.py: content hashes, the stat-keyed cache, folders and DVC pointers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from importlib import metadata
from pathlib import Path

import pytest

from mlmake.state import hashing as fingerprint
from mlmake.state.hashing import ABSENT, CACHE_FILE, Digest, Hasher, canonical, dvc_pointer, hash_bytes, hash_json
from tests.fakes import FakeClock
from tests.helpers import write_files

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def settle(root: Path) -> None:
    """Age every file by a minute: the cache remembers only files not modified just now."""
    past = time.time_ns() - 60 * 10**9
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(past, past))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path whose bytes the hasher reads (the stat cache's misses)."""
    calls: list[str] = []
    real = fingerprint._hash_file

    def counting(path: str) -> str:
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(fingerprint, "_hash_file", counting)
    return calls


# --- hashes of values ----------------------------------------------------------------


def test_hash_bytes_is_blake3_truncated_to_128_bits() -> None:
    from blake3 import blake3

    assert hash_bytes(b"abc") == blake3(b"abc").hexdigest(length=16)
    assert HEX32.match(hash_bytes(b""))
    assert hash_bytes(b"abc") != hash_bytes(b"abd")


def test_hash_json_ignores_key_order_but_not_values_or_types() -> None:
    assert hash_json({"a": 1, "b": [1, 2]}) == hash_json({"b": [1, 2], "a": 1})
    assert hash_json({"a": 1}) != hash_json({"a": 2})
    assert hash_json({"a": 1}) != hash_json({"a": "1"})
    assert hash_json([1, 2]) != hash_json([2, 1])


def test_canonical_is_compact_sorted_and_keeps_unicode() -> None:
    assert canonical({"b": 1, "a": ["é", None, True]}) == '{"a":["é",null,true],"b":1}'


# --- files -----------------------------------------------------------------------------


def test_a_missing_path_is_absent(tmp_path: Path) -> None:
    digest = Hasher(tmp_path).digest("nope.csv")
    assert digest == ABSENT
    assert not digest.exists
    assert Digest("x", 0).exists


def test_a_file_digest_is_its_content_hash_and_size(tmp_path: Path) -> None:
    write_files(tmp_path, {"data/x.csv": "a,b\n1,2\n"})
    assert Hasher(tmp_path).digest("data/x.csv") == Digest(hash_bytes(b"a,b\n1,2\n"), 8)


def test_changed_content_gives_a_new_hash(tmp_path: Path) -> None:
    clock = FakeClock()
    clock.write(tmp_path / "x.csv", "a\n1\n")
    hasher = Hasher(tmp_path)
    before = hasher.digest("x.csv")
    clock.write(tmp_path / "x.csv", "a\n2\n")  # same size
    after = hasher.digest("x.csv")
    assert after.hash != before.hash
    assert after == Digest(hash_bytes(b"a\n2\n"), 4)


def test_an_unchanged_file_is_read_once(tmp_path: Path, reads: list[str]) -> None:
    write_files(tmp_path, {"x.csv": "a\n1\n"})
    settle(tmp_path)
    hasher = Hasher(tmp_path)
    first = hasher.digest("x.csv")
    assert hasher.digest("x.csv") == first
    assert hasher.digest("x.csv") == first
    assert reads == ["x.csv"]


def test_touch_keeps_the_hash(tmp_path: Path, reads: list[str]) -> None:
    clock = FakeClock()
    clock.write(tmp_path / "x.csv", "a\n1\n")
    hasher = Hasher(tmp_path)
    before = hasher.digest("x.csv")
    clock.touch(tmp_path / "x.csv")
    assert hasher.digest("x.csv") == before
    # the new mtime is remembered: the next look is a cache hit
    assert hasher.digest("x.csv") == before
    assert reads == ["x.csv", "x.csv"]


def test_the_cache_survives_the_process_and_is_written_atomically(tmp_path: Path, reads: list[str]) -> None:
    write_files(tmp_path, {"x.csv": "a\n1\n", "y.csv": "b\n"})
    settle(tmp_path)
    first = Hasher(tmp_path)
    digest = first.digest("x.csv")
    first.save()
    assert sorted(os.listdir(tmp_path / ".mlmake/cache")) == ["hashes.json"]
    saved = json.loads((tmp_path / CACHE_FILE).read_text())
    st = os.stat(tmp_path / "x.csv")
    assert saved == {"version": 2, "entries": {
        "x.csv": [4, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns, digest.hash]}}

    second = Hasher(tmp_path)
    assert second.digest("x.csv") == digest
    assert reads == ["x.csv"]
    assert not second.dirty


def test_save_writes_nothing_when_nothing_new_was_hashed(tmp_path: Path) -> None:
    write_files(tmp_path, {"x.csv": "1\n"})
    Hasher(tmp_path).save()
    assert not (tmp_path / CACHE_FILE).exists()
    hasher = Hasher(tmp_path, persist=False)
    hasher.digest("x.csv")
    hasher.save()
    assert not (tmp_path / CACHE_FILE).exists()


@pytest.mark.parametrize("content", ["{not json", '{"version": 99, "entries": {"x.csv": [0, 0, 0, "bad"]}}',
                                     '{"version": 2, "entries": []}', "[]"])
def test_an_unreadable_or_foreign_cache_is_ignored(tmp_path: Path, content: str) -> None:
    write_files(tmp_path, {"x.csv": "1\n", CACHE_FILE: content})
    assert Hasher(tmp_path).digest("x.csv").hash == hash_bytes(b"1\n")


def test_a_cache_entry_for_another_size_mtime_inode_device_or_ctime_is_not_trusted(tmp_path: Path) -> None:
    write_files(tmp_path, {"x.csv": "1\n"})
    st = os.stat(tmp_path / "x.csv")
    good = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]
    for i in range(len(good)):
        stale = list(good)
        stale[i] += 1
        write_files(tmp_path, {CACHE_FILE: json.dumps({"version": 2, "entries": {"x.csv": stale + ["stale"]}})})
        assert Hasher(tmp_path).digest("x.csv").hash == hash_bytes(b"1\n"), f"field {i} ignored"
    write_files(tmp_path, {CACHE_FILE: json.dumps({"version": 2, "entries": {"x.csv": good + ["cached"]}})})
    assert Hasher(tmp_path).digest("x.csv").hash == "cached"  # the whole point of the cache


def test_a_replaced_file_with_the_same_size_and_mtime_is_rehashed(tmp_path: Path) -> None:
    # editors and `git checkout` write a new file and rename it over the old one: a new inode
    write_files(tmp_path, {"x.csv": "a\n"})
    settle(tmp_path)
    hasher = Hasher(tmp_path)
    before = hasher.digest("x.csv")
    st = os.stat(tmp_path / "x.csv")
    write_files(tmp_path, {"x.tmp": "b\n"})
    os.utime(tmp_path / "x.tmp", ns=(st.st_atime_ns, st.st_mtime_ns))
    keep_inode_busy = (tmp_path / "x.csv").open("rb")  # so the new file cannot reuse the inode
    try:
        os.replace(tmp_path / "x.tmp", tmp_path / "x.csv")
        assert os.stat(tmp_path / "x.csv").st_ino != st.st_ino
        assert hasher.digest("x.csv").hash != before.hash
    finally:
        keep_inode_busy.close()


def test_an_in_place_rewrite_that_puts_the_mtime_back_is_seen_by_its_ctime(tmp_path: Path) -> None:
    # cp -p, rsync -t and touch -r restore the mtime; nothing can restore the ctime
    write_files(tmp_path, {"x.csv": "a\n"})
    settle(tmp_path)
    hasher = Hasher(tmp_path)
    hasher.digest("x.csv")
    st = os.stat(tmp_path / "x.csv")
    with open(tmp_path / "x.csv", "r+b") as f:
        f.write(b"b")
    os.utime(tmp_path / "x.csv", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(tmp_path / "x.csv").st_size, os.stat(tmp_path / "x.csv").st_ino) == (st.st_size, st.st_ino)
    assert hasher.digest("x.csv").hash == hash_bytes(b"b\n")


def test_a_file_modified_just_now_is_not_remembered(tmp_path: Path, reads: list[str]) -> None:
    write_files(tmp_path, {"x.csv": "a\n1\n"})
    hasher = Hasher(tmp_path)
    first = hasher.digest("x.csv")
    assert hasher.digest("x.csv") == first
    assert reads == ["x.csv", "x.csv"] and "x.csv" not in hasher.entries


def test_a_file_rewritten_in_the_same_clock_tick_it_was_hashed_is_rehashed(tmp_path: Path) -> None:
    # A file system with 1 s timestamps (HFS+, FAT, many network mounts): write, hash, and
    # rewrite (same size) within the same second; mtime does not move. Simulated with utime.
    second = int(time.time()) * 10**9
    path = tmp_path / "x.csv"
    with open(path, "wb") as f:
        f.write(b"a\n")
    os.utime(path, ns=(second, second))
    hasher = Hasher(tmp_path)
    hasher.digest("x.csv")
    hasher.save()
    with open(path, "r+b") as f:
        f.write(b"b")
    os.utime(path, ns=(second, second))
    assert Hasher(tmp_path).digest("x.csv").hash == hash_bytes(b"b\n")


# --- folders ---------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Digest:
    write_files(root, {f"out/{k}": v for k, v in files.items()})
    return Hasher(root, persist=False).digest("out")


def test_a_folder_digest_covers_names_and_contents_and_sums_sizes(tmp_path: Path) -> None:
    base = _tree(tmp_path / "a", {"x.txt": "1", "sub/y.txt": "22"})
    assert base.hash.startswith("dir:") and HEX32.match(base.hash[4:])
    assert base.size == 3
    assert _tree(tmp_path / "b", {"sub/y.txt": "22", "x.txt": "1"}) == base  # order of writing
    assert _tree(tmp_path / "c", {"x.txt": "1", "sub/y.txt": "23"}).hash != base.hash  # content
    assert _tree(tmp_path / "d", {"x.txt": "1", "sub/z.txt": "22"}).hash != base.hash  # a rename
    assert _tree(tmp_path / "e", {"x.txt": "1", "y.txt": "22"}).hash != base.hash  # a move
    assert _tree(tmp_path / "f", {"x.txt": "1", "sub/y.txt": "22", "w.txt": ""}).hash != base.hash  # a new file


def test_an_empty_folder_exists_and_differs_from_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    write_files(tmp_path, {"f": ""})
    hasher = Hasher(tmp_path)
    assert hasher.digest("out") == Digest("dir:" + hash_bytes(b""), 0)
    assert hasher.digest("out").hash != hasher.digest("f").hash


def test_folder_files_go_through_the_stat_cache(tmp_path: Path, reads: list[str]) -> None:
    write_files(tmp_path, {"out/a.txt": "1", "out/b.txt": "2"})
    settle(tmp_path)
    hasher = Hasher(tmp_path)
    first = hasher.digest("out")
    hasher.save()
    assert sorted(hasher.entries) == ["out/a.txt", "out/b.txt"]
    assert Hasher(tmp_path).digest("out") == first
    assert sorted(reads) == ["a.txt", "b.txt"]


def test_a_dangling_symlink_in_a_folder_does_not_crash(tmp_path: Path) -> None:
    write_files(tmp_path, {"out/a.txt": "1"})
    os.symlink("gone.txt", tmp_path / "out" / "link.txt")
    assert Hasher(tmp_path).digest("out").exists


def test_digests_do_not_depend_on_where_the_project_is(tmp_path: Path) -> None:
    files = {"data/x.csv": "1\n", "out/a/b.txt": "z", "out/c.txt": "y"}
    one, two = write_files(tmp_path / "one", files), write_files(tmp_path / "deep/er/two", files)
    for rel in ("data/x.csv", "out", "out/a"):
        assert Hasher(one).digest(rel) == Hasher(two).digest(rel)


# --- DVC pointers ----------------------------------------------------------------------

POINTER = "outs:\n- md5: abc\n  size: 3\n  path: x.csv\n"


def test_a_dvc_pointer_gives_the_hash_without_the_data(tmp_path: Path, reads: list[str]) -> None:
    write_files(tmp_path, {"data/x.csv.dvc": POINTER})
    hasher = Hasher(tmp_path)
    assert hasher.source_digest("data/x.csv") == Digest("md5:abc", 3)
    assert dvc_pointer(tmp_path, "data/x.csv") == Digest("md5:abc", 3)
    assert hasher.digest("data/x.csv") == ABSENT  # outputs are never looked up through pointers
    assert reads == []


ABC_MD5 = "900150983cd24fb0d6963f7d28e17f72"  # md5(b"abc")


def test_data_that_agrees_with_its_pointer_has_the_pointers_hash_so_a_clone_and_a_checkout_agree(
        tmp_path: Path) -> None:
    write_files(tmp_path, {"data/x.csv": "abc", "data/x.csv.dvc": POINTER.replace("abc", ABC_MD5)})
    hasher = Hasher(tmp_path)
    assert hasher.source_digest("data/x.csv") == Digest(f"md5:{ABC_MD5}", 3)
    assert hasher.unrecorded_notes() == []


def test_data_that_differs_from_its_pointer_is_hashed_as_read_and_noted(tmp_path: Path) -> None:
    write_files(tmp_path, {"data/x.csv": "abc", "data/x.csv.dvc": POINTER})
    hasher = Hasher(tmp_path)
    assert hasher.source_digest("data/x.csv") == Digest(f"md5:{ABC_MD5}", 3)
    assert hasher.unrecorded_notes() == ["data/x.csv differs from data/x.csv.dvc: run `mlmake data add data/x.csv`"]


def test_a_workspace_folder_is_hashed_as_dvcs_tree_manifest(tmp_path: Path) -> None:
    write_files(tmp_path, {"images/b/c.txt": "abc", "images/a.txt": "", "images.dvc": POINTER})
    manifest = json.dumps([{"md5": "d41d8cd98f00b204e9800998ecf8427e", "relpath": "a.txt"},
                           {"md5": ABC_MD5, "relpath": "b/c.txt"}], sort_keys=True).encode()
    want = "md5:" + hashlib.md5(manifest).hexdigest() + ".dir"
    assert Hasher(tmp_path).source_digest("images") == Digest(want, 3)


def test_the_md5_of_workspace_data_is_remembered_by_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path, {"x.csv": "abc", "x.csv.dvc": POINTER.replace("abc", ABC_MD5)})
    old = time.time_ns() - 10_000_000_000  # not "racily clean"
    os.utime(tmp_path / "x.csv", ns=(old, old))
    first = Hasher(tmp_path)
    first.source_digest("x.csv")
    first.save()
    calls: list[str] = []
    real = fingerprint.md5_file
    monkeypatch.setattr(fingerprint, "md5_file", lambda path: calls.append(path) or real(path))
    assert Hasher(tmp_path).source_digest("x.csv") == Digest(f"md5:{ABC_MD5}", 3)
    assert calls == []
    (tmp_path / "x.csv").write_text("abd")
    assert Hasher(tmp_path).source_digest("x.csv").hash == "md5:" + hashlib.md5(b"abd").hexdigest()
    assert calls == [str(tmp_path / "x.csv")]


def test_a_folder_pointer_and_a_pointer_without_size(tmp_path: Path) -> None:
    write_files(tmp_path, {"images.dvc": "outs:\n- md5: f00.dir\n  path: images\n  nfiles: 2\n"})
    assert Hasher(tmp_path).source_digest("images") == Digest("md5:f00.dir", 0)


def test_without_a_pointer_the_source_digest_is_the_content(tmp_path: Path) -> None:
    write_files(tmp_path, {"x.csv": "abc"})
    assert Hasher(tmp_path).source_digest("x.csv") == Digest(hash_bytes(b"abc"), 3)


@pytest.mark.parametrize("text", ["outs: [", "outs: []\n", "outs:\n- path: x.csv\n", "just text\n", ""])
def test_a_broken_pointer_reads_as_unreadable_not_a_crash(tmp_path: Path, text: str) -> None:
    write_files(tmp_path, {"x.csv.dvc": text})
    assert Hasher(tmp_path).source_digest("x.csv") == Digest("md5:unreadable", 0)


def test_a_changed_pointer_changes_the_digest(tmp_path: Path) -> None:
    write_files(tmp_path, {"x.csv.dvc": POINTER})
    before = Hasher(tmp_path).source_digest("x.csv")
    write_files(tmp_path, {"x.csv.dvc": POINTER.replace("abc", "abd")})
    assert Hasher(tmp_path).source_digest("x.csv") != before


# --- library versions ------------------------------------------------------------------


def test_library_version_reads_metadata_without_importing() -> None:
    assert fingerprint.library_version("click") == metadata.version("click")
    assert fingerprint.library_version("no-such-distribution-xyz") == "missing"
