"""mlmake.remote.objects: files by their md5 on a remote in a folder, as a Dask build's client and
workers exchange them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlmake.remote.objects import ObjectError, Objects, files_of, object_key, relative
from mlmake.state.hashing import md5_file


def test_a_file_put_is_named_by_its_md5_in_dvcs_layout_and_read_only(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("hello\n")
    md5 = md5_file(source)
    objects = Objects(str(tmp_path / "remote"))
    assert not objects.has(md5)
    objects.put(source, md5)
    stored = tmp_path / "remote" / "files" / "md5" / md5[:2] / md5[2:]
    assert objects.has(md5) and stored.read_text() == "hello\n"
    assert object_key(md5) == f"files/md5/{md5[:2]}/{md5[2:]}"
    assert stored.stat().st_mode & 0o777 == 0o444
    assert sorted(p.name for p in stored.parent.iterdir()) == [md5[2:]]  # no temporary left

    (tmp_path / "out").mkdir()
    objects.get(md5, tmp_path / "out" / "b.txt")
    assert (tmp_path / "out" / "b.txt").read_text() == "hello\n"


def test_a_corrupted_or_missing_object_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("hello\n")
    md5 = md5_file(source)
    objects = Objects(str(tmp_path / "remote"))
    objects.put(source, md5)
    stored = tmp_path / "remote" / object_key(md5)
    os.chmod(stored, 0o644)
    stored.write_text("tampered\n")
    with pytest.raises(ObjectError) as exc:
        objects.get(md5, tmp_path / "b.txt")
    assert str(exc.value) == (f"object {md5} on the remote {tmp_path / 'remote'} is corrupted (its bytes do not "
                              "match its md5)")
    with pytest.raises(ObjectError) as exc:
        objects.get("0" * 32, tmp_path / "b.txt")
    assert str(exc.value) == f"object {'0' * 32} is not on the remote {tmp_path / 'remote'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "remote"]


def test_a_folders_files_are_listed_sorted_with_their_paths_inside_it(tmp_path: Path) -> None:
    for rel in ("b/z.txt", "b/a/y.txt", "a.txt"):
        (tmp_path / "out" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "out" / rel).write_text(rel)
    top = tmp_path / "out"
    assert [relative(f, top) for f in files_of(top)] == ["a.txt", "b/z.txt", "b/a/y.txt"]
    assert [relative(f, top / "a.txt") for f in files_of(top / "a.txt")] == [""]


def test_a_remote_url_goes_through_fsspec_and_a_scheme_without_its_plugin_says_so(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("hello\n")
    md5 = md5_file(source)
    objects = Objects("memory://mlmake-test-remote")  # fsspec's in-process file system
    objects.put(source, md5)
    assert objects.has(md5)
    assert objects._remote_fs().ls("/mlmake-test-remote/files/md5/" + md5[:2], detail=False) == [
        f"/mlmake-test-remote/{object_key(md5)}"]
    objects.get(md5, tmp_path / "b.txt")
    assert (tmp_path / "b.txt").read_text() == "hello\n"

    with pytest.raises(ObjectError) as exc:
        Objects("nosuchscheme://bucket/x").has(md5)
    assert str(exc.value).startswith("cannot open the remote nosuchscheme://bucket/x: ")
