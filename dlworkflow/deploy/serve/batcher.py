"""Dynamic micro-batching: concurrent requests share one ONNX call.

Requests put their prepared input on an asyncio queue; one worker takes the first, lets the
others join while more are on their way (`expecting()`: requests admitted but still being read
or decoded; at most `max_wait_ms`, and no wait at all when none is coming), concatenates up to
`max_batch` items that fit the same model and input shape (token ids of any length, padded
with the pad id; series of any length, NaN-padded: neither changes a result), and runs the
model in a thread so the event loop keeps accepting requests.

Under load the batches pipeline: while one batch runs in the model's thread, the next one
collects every request that is ready, and starts the moment the model is free (no wait for
requests still being decoded: the model never idles while the event loop decodes, and the
batches grow with the load). One batch runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlworkflow.runtime.observe import EMBED_DIMS, FEATURES_OUTPUT, embed, has_features


def infer_outputs(
    bundle: Any, x: np.ndarray, *, embed_features: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(the task's outputs (N, K): classification the probabilities, exactly as
    observe.infer computes them; regression values in the target's units; multi-label label
    probabilities, and the embedding (N, EMBED_DIMS) or None, as observe.infer)."""
    x = bundle._check_array(x)
    if not (embed_features and has_features(bundle)):
        return bundle.predict_outputs(x), None
    if len(x) == 0:
        return (
            bundle.empty_outputs(),
            np.zeros((0, EMBED_DIMS), dtype=np.float32),
        )
    logits, features = bundle.session.run(["logits", FEATURES_OUTPUT], {"input": x})
    return bundle.outputs_of(logits), embed(features)


@dataclass
class Job:
    bundle: Any
    x: np.ndarray
    future: asyncio.Future[Any]

    def fits(self, other: Job) -> bool:
        if other.bundle is not self.bundle or other.x.dtype != self.x.dtype:
            return False
        if other.x.shape[1:] == self.x.shape[1:]:
            return True
        if is_series(self.bundle, self.x) and is_series(other.bundle, other.x):
            return other.x.shape[1] == self.x.shape[1]  # the same channels, NaN-padded
        return is_token_ids(self.x) and is_token_ids(other.x)  # padded to one length


def is_token_ids(x: np.ndarray) -> bool:
    return x.ndim == 2 and x.dtype == np.int64


def is_series(bundle: Any, x: np.ndarray) -> bool:
    """A series model's NaN-padded (N, C, T) batch (store.series.nan_padded)."""
    return getattr(bundle, "modality", None) == "sequence" and x.ndim == 3


def concatenate(arrays: list[np.ndarray], *, series: bool = False) -> np.ndarray:
    """One batch; token id rows are right-padded with 0 (the pad id) to the longest, series
    (`series`) with NaN (after each series' end: the padding the model reads)."""
    if len(arrays) == 1:
        return arrays[0]
    if series:
        total = max(a.shape[2] for a in arrays)
        return np.concatenate(
            [
                np.pad(a, ((0, 0), (0, 0), (0, total - a.shape[2])), constant_values=np.nan)
                for a in arrays
            ]
        )
    width = max(a.shape[1] for a in arrays) if is_token_ids(arrays[0]) else None
    if width is not None and any(a.shape[1] != width for a in arrays):
        arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays]
    return np.concatenate(arrays)


class MicroBatcher:
    def __init__(
        self,
        *,
        max_batch: int,
        max_wait_ms: float,
        executor: Executor,
        on_batch: Callable[[int], None] | None = None,
        expecting: Callable[[], int] | None = None,
        embed_features: bool = True,
    ) -> None:
        self.max_batch = max_batch
        self.embed_features = embed_features  # the prediction log's embeddings
        self.expecting = expecting
        self.max_wait = max_wait_ms / 1000.0
        self.executor = executor
        self.on_batch = on_batch
        self._queue: asyncio.Queue[Job] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._getter: asyncio.Task[Job] | None = None
        self._running: asyncio.Task[None] | None = None

    def _ensure_running(self) -> None:
        """Start the worker on the running loop (again, if the app moved to another loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop = loop
        self._queue = asyncio.Queue()
        self._getter = None
        self._task = loop.create_task(self._run(), name="dlw-micro-batcher")

    async def stop(self) -> None:
        for task in (self._getter, self._task, self._running):
            if task is not None and task.get_loop() is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._getter = self._running = None

    async def predict(self, bundle: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Task outputs (len(x), K) and embeddings (len(x), 32) or None for x (infer_outputs),
        computed in a batch shared with other requests."""
        self._ensure_running()
        assert self._queue is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(Job(bundle, x, future))
        return await future

    async def _next(
        self, timeout: float | None, running: asyncio.Task[None] | None = None
    ) -> Job | None:
        """The next job, or None after `timeout` seconds or once `running` (the batch in the
        model) ends. The pending get survives, so no job is ever lost between two waits."""
        assert self._queue is not None
        if self._getter is None:
            if not self._queue.empty():
                return self._queue.get_nowait()  # ready: no task, no wait
            self._getter = asyncio.ensure_future(self._queue.get())
        if (timeout is not None or running is not None) and not self._getter.done():
            wanted = {self._getter} if running is None else {self._getter, running}
            await asyncio.wait(
                wanted,
                timeout=None if timeout is None else max(timeout, 0.0),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not self._getter.done():
                return None
        job = await self._getter
        self._getter = None
        return job

    def _nobody_coming(self) -> bool:
        return (
            self.expecting is not None
            and self.expecting() == 0
            and self._queue is not None
            and self._queue.empty()
            and (self._getter is None or not self._getter.done())
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        held: Job | None = None
        running: asyncio.Task[None] | None = None  # the batch in the model's thread
        while True:
            first = held or await self._next(None)
            held = None
            if first is None or first.future.done():
                continue
            jobs, n = [first], len(first.x)
            deadline = loop.time() + self.max_wait
            while n < self.max_batch:
                if running is not None and not running.done():
                    # collect what is ready; the model is free: go (the requests still being
                    # decoded join the next batch, which collects while this one runs)
                    job = await self._next(None, running)
                elif self._nobody_coming():
                    break  # nobody else is on the way: waiting would only add latency
                else:
                    job = await self._next(deadline - loop.time())
                if job is None:
                    break
                if job.future.done():  # its request timed out or went away
                    continue
                if not first.fits(job) or n + len(job.x) > self.max_batch:
                    held = job
                    break
                jobs.append(job)
                n += len(job.x)
            if running is not None:
                await running  # one batch at a time in the model
            running = self._running = loop.create_task(self._execute(jobs, n))

    async def _execute(self, jobs: list[Job], n: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            x = concatenate([job.x for job in jobs], series=is_series(jobs[0].bundle, jobs[0].x))
            probs, emb = await loop.run_in_executor(
                self.executor,
                functools.partial(infer_outputs, embed_features=self.embed_features),
                jobs[0].bundle,
                x,
            )
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(n)
        start = 0
        for job in jobs:
            stop = start + len(job.x)
            if not job.future.done():
                job.future.set_result((probs[start:stop], None if emb is None else emb[start:stop]))
            start = stop
