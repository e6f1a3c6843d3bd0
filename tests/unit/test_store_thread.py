"""StoreThread: a build's DVC work on one thread, in order, its failures reported once."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from mlmake.planning.plan import Decision
from mlmake.remote.dvcstore import RemoteError
from mlmake.remote.restore import Restorer, StoreThread
from mlmake.state.fingerprint import Components
from mlmake.state.lock import Entry


class FakeStore:
    def __init__(self, calls: list[tuple[str, str, str]], fail_open: bool = False) -> None:
        self.calls, self.fail_open = calls, fail_open

    def ensure(self) -> None:
        self.calls.append(("open", "", threading.current_thread().name))
        if self.fail_open:
            raise RemoteError("cannot set up DVC")

    def close(self) -> None:
        self.calls.append(("close", "", threading.current_thread().name))

    def fetch(self, addresses: list[str], *, quiet: bool = False) -> None:
        self.calls.append(("fetch", ",".join(addresses), threading.current_thread().name))


class LocalRestore:
    def __init__(self, serves: bool) -> None:
        self.serves = serves

    def serves_remote(self) -> bool:
        return self.serves


class FakeRestorer:
    """Records what ran on which thread; `gate` holds the saves back until the test sets it."""

    def __init__(self, fail: dict[str, Exception] | None = None, fail_open: bool = False) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.store = FakeStore(self.calls, fail_open)
        self.fail = fail or {}
        self.gate = threading.Event()
        self.local = LocalRestore(serves=False)

    def save(self, step: Decision, outputs: dict[str, Any], metrics: dict[str, Any]) -> None:
        self.gate.wait(10)
        self.calls.append(("save", step.address, threading.current_thread().name))
        if step.address in self.fail:
            raise self.fail[step.address]

    def restore(self, step: Decision, entry: Entry | None) -> Entry | None:
        self.calls.append(("restore", step.address, threading.current_thread().name))
        return entry


def step(address: str) -> Decision:
    return Decision(address, "cmd", "build", (), "f" * 64, {}, ())


def thread_of(restorer: FakeRestorer) -> StoreThread:
    return StoreThread(cast(Restorer, restorer))


def test_saves_run_in_order_on_one_other_thread_and_a_restore_waits_for_them() -> None:
    fake = FakeRestorer()
    store = thread_of(fake)
    store.open()
    store.save(step("steps.a"), {}, {})
    store.save(step("steps.b"), {}, {})
    assert store.failures() == []  # both still held back: nothing to report yet, nothing waited for
    assert [c[0] for c in fake.calls] == ["open"]
    fake.gate.set()
    entry = Entry("f" * 64, "cmd", Components(), {}, {})
    assert store.restore(step("steps.c"), entry) is entry
    assert [(verb, address) for verb, address, _ in fake.calls] == [
        ("open", ""), ("save", "steps.a"), ("save", "steps.b"), ("restore", "steps.c")]
    assert store.close() == []
    names = {name for _, _, name in fake.calls}
    assert len(names) == 1 and names != {threading.current_thread().name}
    assert fake.calls[-1][0] == "close"


def test_a_failed_save_is_reported_once_and_an_open_failure_is_left_to_the_saves() -> None:
    fake = FakeRestorer({"steps.a": RemoteError("disk full")}, fail_open=True)
    fake.gate.set()
    store = thread_of(fake)
    store.open()
    store.save(step("steps.a"), {}, {})
    store.save(step("steps.b"), {}, {})
    assert store.failures(wait=True) == ["steps.a: built, but not stored in the DVC cache: disk full"]
    assert store.failures(wait=True) == []
    assert store.close() == []


def test_a_bug_in_a_save_is_raised_not_reported() -> None:
    fake = FakeRestorer({"steps.a": KeyError("oops")})
    fake.gate.set()
    store = thread_of(fake)
    store.save(step("steps.a"), {}, {})
    with pytest.raises(KeyError):
        store.close()
    assert fake.calls[-1][0] == "close"  # DVC is closed all the same


def test_dvc_is_opened_once_however_many_nodes_are_built() -> None:
    fake = FakeRestorer()
    fake.gate.set()
    store = thread_of(fake)
    store.open()
    store.open()
    assert store.close() == []
    assert [verb for verb, _, _ in fake.calls] == ["open", "close"]


@pytest.mark.parametrize(("serves", "fetched"), [(False, [("fetch", "steps.a,steps.b")]), (True, [])])
def test_nodes_to_restore_are_prefetched_through_dvc_unless_copied_from_a_local_folder(serves, fetched) -> None:
    fake = FakeRestorer()
    fake.local = LocalRestore(serves)
    store = thread_of(fake)
    store.prefetch(["steps.a", "steps.b"])
    assert store.close() == []
    assert [(verb, address) for verb, address, _ in fake.calls if verb == "fetch"] == fetched
