"""Ingest on all cores: images are decoded and hashed in worker processes, in chunks, while
this process lists the files, finds the unchanged ones, and writes the manifest.

Outcomes come back in candidate order, so the manifest, its dataset version and the quarantine
are the same whatever the number of workers (data.workers). A pool starts only when a source
holds more than POOL_THRESHOLD candidates: below it, starting processes would cost more than
it saves, and every candidate is read in this process. At most a few chunks per worker are in
flight: memory stays flat however many files the source holds.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from dlworkflow.errors import DataError
from dlworkflow.store import ImageDecodeError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from dlworkflow.data.readers import ImageJob, Reader
    from dlworkflow.data.sources import Candidate

POOL_THRESHOLD = 2_000  # candidates: more, and a pool of workers decodes them
CHUNK = 128  # images per task sent to a worker
IN_FLIGHT_PER_WORKER = 4  # chunks queued per worker (bounds the memory held)

T = TypeVar("T")
Outcome = dict[str, Any] | ImageDecodeError  # a manifest row, or why the sample is quarantined


def resolve_workers(setting: int | str) -> int:
    """data.workers as a count: auto is the CPU cores this process may run on, where worker
    processes are safe to start (_main_is_safe), else 1."""
    if setting == "auto":
        if not _main_is_safe():
            return 1
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(setting, int) and setting >= 1:
        return setting
    raise DataError(
        "data.workers must be a positive number of processes, or auto.",
        expected="auto, or an integer >= 1",
        received=repr(setting),
        fix="set data.workers: auto in dlworkflow.yaml (one worker per CPU core)",
    )


def read_outcomes(
    items: Iterable[tuple[T, Candidate]],
    reader: Reader,
    *,
    check: Callable[[Candidate], None],
    workers: int,
    known: int | None = None,
) -> Generator[tuple[T, Candidate, Outcome], None, None]:
    """(tag, candidate, row or ImageDecodeError) for every item, in order. `check` runs first
    on each candidate (raising ImageDecodeError to quarantine it before it is read). `known`:
    how many candidates there are at most, when the sources know (a remote listing); else up
    to POOL_THRESHOLD + 1 candidates are listed ahead to decide whether to start the pool."""
    items = iter(items)
    if workers < 2 or not reader.parallel:
        yield from _serial([], items, reader, check)
        return
    head = [] if known is not None else list(islice(items, POOL_THRESHOLD + 1))
    if (len(head) if known is None else known) <= POOL_THRESHOLD or not _workers_can_start():
        yield from _serial(head, items, reader, check)
        return
    yield from _pooled(head, items, reader, check, workers)


def _main_is_safe() -> bool:
    """Whether worker processes may start without side effects. forkserver and spawn workers
    re-run the main module as __mp_main__: harmless for `dlw` (its entry point), `python -m
    dlworkflow`, a REPL or `python -c` (no file to re-run); a user's script without an
    `if __name__ == "__main__":` guard would run again in each worker (the project created
    again, steps run again). So `auto` uses the pool from those only; a script that sets
    data.workers to a number has opted in (and needs the guard, as multiprocessing does)."""
    main = sys.modules.get("__main__")
    if getattr(main, "__file__", None) is None:
        return True
    spec = getattr(main, "__spec__", None)
    if (getattr(spec, "name", None) or "").startswith("dlworkflow"):
        return True
    return os.path.basename(sys.argv[0]) in ENTRY_POINTS


ENTRY_POINTS = {"dlw"}  # console scripts whose main module is guarded


def _workers_can_start() -> bool:
    """False when the main module names a file that is not there (a script read from stdin:
    `python - < script.py`): forkserver and spawn workers re-run it by its path and die."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)


def _serial(
    head: list[tuple[T, Candidate]],
    rest: Iterator[tuple[T, Candidate]],
    reader: Reader,
    check: Callable[[Candidate], None],
) -> Iterator[tuple[T, Candidate, Outcome]]:
    for tag, cand in _chain(head, rest):
        try:
            check(cand)
            outcome: Outcome = reader.read(cand)
        except ImageDecodeError as exc:
            outcome = exc
        yield tag, cand, outcome


def _chain(head: list[T], rest: Iterator[T]) -> Iterator[T]:
    """head's items (each let go once taken), then rest's."""
    head.reverse()
    while head:
        yield head.pop()
    yield from rest


def _pooled(
    head: list[tuple[T, Candidate]],
    rest: Iterator[tuple[T, Candidate]],
    reader: Reader,
    check: Callable[[Candidate], None],
    workers: int,
) -> Iterator[tuple[T, Candidate, Outcome]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cfg = reader.project.config.data
    limits = (cfg.max_image_pixels, cfg.max_image_side)
    pool = ProcessPoolExecutor(workers, mp_context=_start_method(multiprocessing))
    pending: deque[tuple[list[tuple[T, Candidate, Any]], _Chunk | _Decoded | None]] = deque()
    items = _chain(head, rest)
    try:
        while True:
            chunk = _begin_chunk(islice(items, CHUNK), reader, check)
            if chunk:
                paths = [str(job.origin) for _, _, job in chunk if _is_job(job)]
                future = _submit(pool, paths, limits) if paths else None
                pending.append((chunk, future))
            while pending and (not chunk or len(pending) >= workers * IN_FLIGHT_PER_WORKER):
                yield from _complete_chunk(*pending.popleft(), reader)
            if not chunk:
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Decoded:
    """A chunk decoded in this process: what a Future of the pool gives."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def result(self) -> list[Any]:
        return self.values


class _Chunk:
    """A chunk sent to the pool; decoded here instead when the pool broke (a worker died:
    killed for memory, say), so an ingest never fails for the pool's sake."""

    def __init__(self, future: Future[list[Any]], paths: list[str], limits: tuple[int, int]):
        self.future, self.paths, self.limits = future, paths, limits

    def result(self) -> list[Any]:
        from concurrent.futures.process import BrokenProcessPool

        from dlworkflow.data.image_decode import decode_chunk

        try:
            return self.future.result()
        except BrokenProcessPool:
            return decode_chunk(self.paths, *self.limits)


def _submit(pool: Any, paths: list[str], limits: tuple[int, int]) -> _Chunk | _Decoded:
    from concurrent.futures.process import BrokenProcessPool

    from dlworkflow.data.image_decode import decode_chunk

    try:
        return _Chunk(pool.submit(decode_chunk, paths, *limits), paths, limits)
    except BrokenProcessPool:
        return _Decoded(decode_chunk(paths, *limits))


def _start_method(multiprocessing: Any) -> Any:
    """forkserver where there is one: a clean process (none of this one's threads, such as the
    progress bar's, or state) that imports the decoding modules once, then forks each worker,
    so starting them costs little; else spawn (each worker imports them itself)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["dlworkflow.data.image_decode"])
    return context


def _begin_chunk(
    items: Iterable[tuple[T, Candidate]], reader: Reader, check: Callable[[Candidate], None]
) -> list[tuple[T, Candidate, Any]]:
    """(tag, candidate, row | ImageJob | ImageDecodeError) for up to CHUNK items."""
    out: list[tuple[T, Candidate, Any]] = []
    for tag, cand in items:
        try:
            check(cand)
            out.append((tag, cand, reader.begin(cand)))
        except ImageDecodeError as exc:
            out.append((tag, cand, exc))
    return out


def _is_job(value: Any) -> bool:
    from dlworkflow.data.readers import ImageJob

    return isinstance(value, ImageJob)


def _complete_chunk(
    chunk: list[tuple[T, Candidate, Any]], future: _Chunk | _Decoded | None, reader: Reader
) -> Iterator[tuple[T, Candidate, Outcome]]:
    decoded = iter(future.result() if future is not None else ())
    for tag, cand, begun in chunk:
        if _is_job(begun):
            job: ImageJob = begun
            result = next(decoded)
            if isinstance(result, str):
                outcome: Outcome = ImageDecodeError(result)
            else:
                outcome = reader.complete(job, result)
        else:
            outcome = begun
        yield tag, cand, outcome
