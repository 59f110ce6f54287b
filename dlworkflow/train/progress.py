"""A transient rich progress bar over all batches of all epochs, with an ETA.

The per-batch `tick` only bumps a counter; the bar is redrawn at most ~8 times a second, so
it costs nothing measurable per batch. Disabled (a no-op) when asked; without a terminal, a
line at least every 30 s instead (dlworkflow.progress).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _NoBar:
    tick = None

    def epoch_done(self, epoch: int, row: dict[str, float]) -> None:
        pass


class _Bar:
    def __init__(self, progress: Any, task: Any, n_batches: int, epochs: int, metric: str) -> None:
        self._progress, self._task, self._metric = progress, task, metric
        self._epochs = epochs
        self._done, self._shown, self._next = 0, 0, 0.0
        self._n_batches = n_batches

    def tick(self) -> None:
        self._done += 1
        now = time.monotonic()
        if now >= self._next:
            self._progress.update(self._task, completed=self._done)
            self._next = now + 0.125

    def epoch_done(self, epoch: int, row: dict[str, float]) -> None:
        self._done = epoch * self._n_batches
        self._progress.update(
            self._task,
            completed=self._done,
            description=f"[bold]train[/] epoch {min(epoch + 1, self._epochs)}/{self._epochs} "
            f"[dim](val {self._metric.removeprefix('val_')} "
            f"{row[self._metric]:.3f})[/]",
        )


@contextmanager
def epoch_progress(
    epochs: int, n_batches: int, *, enabled: bool, metric: str
) -> Iterator[_Bar | _NoBar]:
    if not enabled:
        yield _NoBar()
        return
    from rich.progress import (
        BarColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from dlworkflow.progress import progress_bar

    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with progress_bar(*columns, transient=True, refresh_per_second=4) as progress:
        task = progress.add_task(f"[bold]train[/] epoch 1/{epochs}", total=epochs * n_batches)
        yield _Bar(progress, task, n_batches, epochs, metric)


@contextmanager
def count_progress(label: str, *, enabled: bool) -> Iterator[Any]:
    """A transient bar for work reported as callback(done, total), e.g. image decoding."""
    if not enabled:
        yield None
        return
    from dlworkflow.progress import progress_bar

    with progress_bar(transient=True, refresh_per_second=4) as progress:
        task = progress.add_task(label, total=None)
        last = [0.0]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.125 or done == total:
                progress.update(task, completed=done, total=total)
                last[0] = now

        yield report
