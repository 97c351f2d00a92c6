"""Batches worked on two at a time: results in order, never two batches of one patient at once,
errors handed back with their batch, and one at a time in the caller's thread when asked."""

from __future__ import annotations

import threading

import pytest

from reminders.overlap import overlapped


class Recorder:
    """Work that notes which batches run at the same time. A batch named in `waits` stays
    running until the batch it names has started, or for at most the seconds given: overlap is
    then certain, not left to the threads' timing."""

    def __init__(self, waits: dict[str, tuple[str, float]] | None = None) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.together: list[frozenset[str]] = []
        self.threads: set[str] = set()
        self.waits = waits or {}
        self.started: dict[str, threading.Event] = {}

    def _event(self, name: str) -> threading.Event:
        with self.lock:
            return self.started.setdefault(name, threading.Event())

    def work(self, batch: tuple[str, set[str]]) -> str:
        name, _ = batch
        with self.lock:
            self.running.add(name)
            self.together.append(frozenset(self.running))
            self.threads.add(threading.current_thread().name)
        self._event(name).set()
        if name in self.waits:
            other, seconds = self.waits[name]
            self._event(other).wait(timeout=seconds)
            with self.lock:
                self.together.append(frozenset(self.running))
        with self.lock:
            self.running.discard(name)
        if name == "bad":
            raise ValueError("refused")
        return name.upper()


def keys(batch: tuple[str, set[str]]) -> set[str]:
    return batch[1]


def test_results_come_in_order_and_at_most_two_run_at_once() -> None:
    recorder = Recorder(waits={"b0": ("b1", 10), "b2": ("b3", 10)})
    batches = [(f"b{i}", {f"p{i}"}) for i in range(8)]

    results = [(b[0], f.result()) for b, f in overlapped(batches, recorder.work, keys)]

    assert results == [(f"b{i}", f"B{i}") for i in range(8)]
    assert max(len(group) for group in recorder.together) == 2
    assert all(name.startswith("batch") for name in recorder.threads)


def test_a_batch_sharing_a_patient_waits_for_the_one_in_flight() -> None:
    # "a" gives "b" half a second to start beside it (it must not); "b" holds on until "c"
    # starts beside it (it must)
    recorder = Recorder(waits={"a": ("b", 0.5), "b": ("c", 10)})
    batches = [("a", {"p1", "p2"}), ("b", {"p2"}), ("c", {"p3"})]

    list(overlapped(batches, recorder.work, keys))

    assert not any({"a", "b"} <= group for group in recorder.together)
    assert any({"b", "c"} <= group for group in recorder.together)


def test_an_error_comes_back_with_its_batch_and_the_others_still_run() -> None:
    recorder = Recorder()
    batches = [("a", {"p1"}), ("bad", {"p2"}), ("c", {"p3"})]

    outcomes = {}
    for (name, _), future in overlapped(batches, recorder.work, keys):
        error = future.exception()
        outcomes[name] = str(error) if error else future.result()

    assert outcomes == {"a": "A", "bad": "refused", "c": "C"}


def test_one_in_flight_works_in_the_callers_thread() -> None:
    recorder = Recorder()
    batches = [("a", {"p1"}), ("bad", {"p2"})]

    pairs = list(overlapped(batches, recorder.work, keys, in_flight=1))

    assert recorder.threads == {threading.current_thread().name}
    assert pairs[0][1].result() == "A"
    with pytest.raises(ValueError, match="refused"):
        pairs[1][1].result()
