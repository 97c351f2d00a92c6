"""Work on consecutive batches two at a time, results in order: while the database works on one
batch (a COPY, a commit), the next batch's Python work goes on in another thread."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Batch = TypeVar("Batch")
Result = TypeVar("Result")


def overlapped(
    batches: Iterable[Batch],
    work: Callable[[Batch], Result],
    keys: Callable[[Batch], Collection[str]],
    *,
    in_flight: int = 2,
) -> Iterator[tuple[Batch, Future[Result]]]:
    """Each batch with its finished `work`, in the order given; up to `in_flight` at once.

    A batch sharing a key with one still in flight (the same patient on two plans, say) waits
    for it, so two batches never write the same rows at once. The caller reads each future's
    result (or error) as it comes, before the next batch is read from `batches`; with
    `in_flight=1` every batch is worked on in the caller's thread, one after the other.
    """
    if in_flight <= 1:
        for batch in batches:
            yield batch, _done(work, batch)
        return
    running: deque[tuple[Batch, frozenset[str], Future[Result]]] = deque()
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="batch") as pool:
        for batch in batches:
            batch_keys = frozenset(keys(batch))
            while running and (
                len(running) >= in_flight or any(batch_keys & other for _, other, _ in running)
            ):
                done, _, future = running.popleft()
                future.exception()  # wait for it
                yield done, future
            running.append((batch, batch_keys, pool.submit(work, batch)))
        while running:
            done, _, future = running.popleft()
            future.exception()
            yield done, future


def _done(work: Callable[[Batch], Result], batch: Batch) -> Future[Result]:
    future: Future[Result] = Future()
    try:
        future.set_result(work(batch))
    except Exception as exc:  # handed to the caller, as a worker thread's error would be
        future.set_exception(exc)
    return future
