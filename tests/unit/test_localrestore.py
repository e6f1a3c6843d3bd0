"""LocalRestore: a node's outputs copied from DVC's object folders (the project's cache, a remote
in a local folder) without DVC, checked against the lock's hashes; and the Restorer's fallback
to DVC where that cannot be done (a cloud remote)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, cast

import pytest

from mlmake.core.errors import MlmakeError
from mlmake.remote.dvcstore import Store
from mlmake.remote.localrestore import LocalRestore, Refused
from mlmake.remote.restore import Restorer
from mlmake.state.hashing import Hasher
from mlmake.state.lock import Entry
from mlmake.state.remotecache import Location

ADDRESS = "models.m"
FOLDER = {"b.txt": b"bee\n", "a/x.txt": b"ex\n" * 1000, "a/c/y.txt": b"why\n", "z/w.txt": b"", "a.txt": b"A\n"}
SCORES = b"score\n" * 5000


def obj(odb: Path, md5: str) -> Path:
    return odb / "files" / "md5" / md5[:2] / md5[2:]


def put(odb: Path, data: bytes, name: str = "") -> str:
    """An object in a DVC 3 layout, read-only as DVC leaves it; its md5."""
    md5 = name or hashlib.md5(data).hexdigest()
    path = obj(odb, md5)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o444)
    return md5


def put_folder(odb: Path, files: dict[str, bytes]) -> str:
    """A folder's files and its `.dir` listing, as DVC writes them; the listing's md5."""
    entries = sorted(({"md5": put(odb, data), "relpath": rel} for rel, data in files.items()),
                     key=lambda e: e["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode()
    return put(odb, listing, hashlib.md5(listing).hexdigest() + ".dir")


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.fixture
def origin(tmp_path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], Path]:
    """The node as built elsewhere: its lock outputs (mlmake's hashes), its DVC md5s, and a remote."""
    built = tmp_path / "built"
    write_tree(built, {f"build/m/{rel}": data for rel, data in FOLDER.items()})
    write_tree(built, {"build/scores.csv": SCORES})
    hasher = Hasher(built, persist=False)
    outputs = {p: {"hash": hasher.digest(p).hash, "size": hasher.digest(p).size}
               for p in ("build/m", "build/scores.csv")}
    remote = tmp_path / "remote"
    md5s = {"build/m": {"md5": put_folder(remote, FOLDER), "size": 1, "nfiles": len(FOLDER)},
            "build/scores.csv": {"md5": put(remote, SCORES), "size": len(SCORES)}}
    return outputs, md5s, remote


def project(tmp_path: Path, md5s: dict[str, dict[str, Any]], url: str = "") -> Path:
    """A clone: DVC set up (an empty config, no cache yet) and the node's pointer as mlmake writes it."""
    root = tmp_path / "clone"
    (root / ".dvc").mkdir(parents=True)
    (root / ".dvc" / "config").write_text("", encoding="utf-8")
    Store(root, Location(url or str(tmp_path / "remote"), {}, False)).write_pointer(ADDRESS, md5s)
    return root


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    """Staging folders and spare object names a restore left behind."""
    stage = [p.name for p in (root / ".mlmake" / "tmp").glob("*")] if (root / ".mlmake" / "tmp").exists() else []
    return stage + [p.name for p in (root / ".dvc").rglob("*.tmp")]


@pytest.fixture(autouse=True)
def no_user_dvc_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "no-global"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "no-system"))


def test_a_fresh_clone_restores_byte_identical_outputs_and_fills_the_dvc_cache(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    warnings: list[str] = []
    assert LocalRestore(root, remote, warnings.append).restore(ADDRESS, outputs, fetch=True) is True
    assert files_under(root / "build" / "m") == FOLDER and (root / "build" / "m" / "z" / "w.txt").is_file()
    assert (root / "build" / "scores.csv").read_bytes() == SCORES
    hasher = Hasher(root, persist=False)
    assert {p: hasher.digest(p).hash for p in outputs} == {p: o["hash"] for p, o in outputs.items()}
    cache = root / ".dvc" / "cache"
    assert files_under(cache) == files_under(remote)  # every object, with its own name
    assert {oct(p.stat().st_mode & 0o777) for p in cache.rglob("*") if p.is_file()} == {"0o444"}
    assert leftovers(root) == [] and warnings == []


def test_the_cache_alone_serves_without_fetch_and_nothing_is_written_when_it_cannot(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    restore = LocalRestore(root, remote, lambda _m: None)
    assert restore.restore(ADDRESS, outputs, fetch=False) is False  # on the remote only
    assert not (root / "build").exists() and not (root / ".dvc" / "cache").exists()
    assert restore.restore(ADDRESS, outputs, fetch=True) is True
    (root / "build" / "scores.csv").unlink()
    assert LocalRestore(root, None, lambda _m: None).restore(ADDRESS, outputs, fetch=False) is True
    assert (root / "build" / "scores.csv").read_bytes() == SCORES


def test_a_corrupted_object_on_the_remote_is_refused_and_nothing_is_half_written(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    write_tree(root, {"build/scores.csv": b"the old scores\n"})
    bad = hashlib.md5(FOLDER["a/x.txt"]).hexdigest()
    os.chmod(obj(remote, bad), 0o644)
    obj(remote, bad).write_bytes(b"ex\n" * 999 + b"EX\n")  # same size, other bytes
    with pytest.raises(Refused) as refused:
        LocalRestore(root, remote, lambda _m: None).restore(ADDRESS, outputs, fetch=True)
    assert str(refused.value) == (f"object {bad} of build/m on the remote ({remote}) is corrupted (its bytes do not "
                                  "match its md5)")
    assert not (root / "build" / "m").exists()
    assert (root / "build" / "scores.csv").read_bytes() == b"the old scores\n"  # the other output: untouched
    assert not obj(root / ".dvc" / "cache", bad).exists() and leftovers(root) == []
    assert not obj(root / ".dvc" / "cache", md5s["build/scores.csv"]["md5"]).exists()  # its node did not restore
    assert obj(remote, bad).exists()  # a configured remote is named, not changed


def test_a_corrupted_object_on_the_machines_default_remote_is_removed_from_it(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    bad = md5s["build/scores.csv"]["md5"]
    os.chmod(obj(remote, bad), 0o644)
    obj(remote, bad).write_bytes(b"not the scores")
    with pytest.raises(Refused) as refused:
        LocalRestore(root, remote, lambda _m: None, repair=True).restore(ADDRESS, outputs, fetch=True)
    assert str(refused.value) == (f"object {bad} of build/scores.csv on the remote ({remote}) is corrupted (its bytes "
                                  "do not match its md5): removed from the remote")
    assert not obj(remote, bad).exists() and not (root / "build").exists()


def test_a_corrupted_object_in_the_cache_is_dropped_and_fetched_again(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    cache = root / ".dvc" / "cache"
    cached = obj(cache, put(cache, b"not the scores", md5s["build/scores.csv"]["md5"]))
    warnings: list[str] = []
    assert LocalRestore(root, remote, warnings.append).restore(ADDRESS, outputs, fetch=True) is True
    assert warnings == [f"{ADDRESS}: object {md5s['build/scores.csv']['md5']} of build/scores.csv in the DVC cache is "
                        "corrupted (its bytes do not match its md5): removed from the cache; fetching it again"]
    assert (root / "build" / "scores.csv").read_bytes() == SCORES and cached.read_bytes() == SCORES


def test_an_output_whose_objects_are_sound_but_not_what_the_lock_records_is_refused(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    other = {**outputs, "build/scores.csv": {"hash": "0" * 32, "size": len(SCORES)}}
    with pytest.raises(Refused) as refused:
        LocalRestore(root, remote, lambda _m: None).restore(ADDRESS, other, fetch=True)
    assert str(refused.value) == "restored build/scores.csv does not match its recorded hash"
    assert not (root / "build").exists() and leftovers(root) == []


@pytest.mark.parametrize("config", ["[cache]\n    type = hardlink\n", "['remote \"mlmake\"']\n    verify = true\n"])
def test_dvc_settings_it_does_not_follow_leave_the_restore_to_dvc(origin, tmp_path, config) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    (root / ".dvc" / "config.local").write_text(config, encoding="utf-8")
    assert LocalRestore(root, remote, lambda _m: None).restore(ADDRESS, outputs, fetch=True) is False
    assert not (root / "build").exists()


def test_a_pointer_mlmake_did_not_write_or_a_missing_object_leaves_it_to_dvc(origin, tmp_path) -> None:
    outputs, md5s, remote = origin
    root = project(tmp_path, md5s)
    os.chmod(obj(remote, md5s["build/scores.csv"]["md5"]), 0o644)
    obj(remote, md5s["build/scores.csv"]["md5"]).unlink()
    assert LocalRestore(root, remote, lambda _m: None).restore(ADDRESS, outputs, fetch=True) is False
    assert not (root / "build").exists() and leftovers(root) == []
    pointer = root / ".mlmake-artifacts" / f"{ADDRESS}.dvc"
    pointer.write_text(pointer.read_text(encoding="utf-8") + "  cache: false\n", encoding="utf-8")
    put(remote, SCORES)
    assert LocalRestore(root, remote, lambda _m: None).restore(ADDRESS, outputs, fetch=True) is False


def test_what_cannot_be_written_here_is_left_to_dvc(tmp_path) -> None:
    """A listing naming `a` both as a file and as a folder cannot be laid out: no traceback, DVC's turn."""
    remote = tmp_path / "remote"
    listing = put_folder(remote, {"a": b"file\n", "a/b": b"under a\n"})
    root = project(tmp_path, {"build/m": {"md5": listing, "size": 14, "nfiles": 2}})
    outputs = {"build/m": {"hash": "dir:" + "0" * 32, "size": 14}}
    assert LocalRestore(root, remote, pytest.fail).restore(ADDRESS, outputs, fetch=True) is False
    assert not (root / "build").exists() and leftovers(root) == []


class CloudStore:
    """A Store on a cloud remote whose DVC checkout and fetch are recorded (and fetch writes the files)."""

    def __init__(self, root: Path) -> None:
        self.root, self.location, self.calls = root, Location("s3://bucket/remote", {}, False), []

    def checkout(self, address: str, *, quiet: bool = False) -> None:
        self.calls.append("checkout")
        if "fetch" not in self.calls:
            raise MlmakeError("not in the DVC cache")
        write_tree(self.root, {f"build/m/{rel}": data for rel, data in FOLDER.items()})
        write_tree(self.root, {"build/scores.csv": SCORES})

    def fetch(self, addresses: list[str], *, quiet: bool = False) -> None:
        self.calls.append("fetch")

    def pointer_md5s(self, address: str) -> dict[str, dict[str, Any]]:
        return {}


def test_a_cloud_remote_is_left_to_dvc(origin, tmp_path) -> None:
    outputs, md5s, _ = origin
    root = project(tmp_path, md5s, "s3://bucket/remote")
    store = CloudStore(root)
    restorer = Restorer(root, cast(Store, store), Hasher(root, persist=False), pull=True, warn=pytest.fail)
    assert restorer.local.serves_remote() is False
    assert restorer.restore_entry(ADDRESS, Entry("f" * 32, "model", {}, outputs, {})) is True
    assert store.calls == ["checkout", "fetch", "checkout"]
    assert (root / "build" / "scores.csv").read_bytes() == SCORES
