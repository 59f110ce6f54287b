"""Progress that shows in a terminal and in a log.

`progress_bar(...)` takes rich's `Progress` arguments. On a terminal it is rich's bar (the
columns given, or rich's defaults, which end with the time remaining). Anywhere else (output
to a file, CI, `nohup`) a bar draws nothing, so the same calls print plain lines instead:
one per unfinished task every `LINE_EVERY_S` seconds, with what is done, the rate's ETA and
the time so far, and a last line when the work ends if a line was printed before (short work
stays silent).

    with progress_bar(transient=True, disable=not progress) as bar:
        task = bar.add_task("reading samples", total=n)
        bar.advance(task)
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

from rich.progress import Progress, Task, TaskID
from rich.text import Text

#: Without a terminal, a progress line at least this often (seconds) while work goes on.
LINE_EVERY_S = 30.0


def progress_bar(*columns: Any, **options: Any) -> Progress:
    """rich's Progress on a terminal (stderr), LineProgress elsewhere; same arguments."""
    from rich.console import Console

    console = options.pop("console", None) or Console(stderr=True)
    if console.is_terminal:
        return Progress(*columns, console=console, **options)
    options.pop("refresh_per_second", None)
    options.pop("transient", None)
    return LineProgress(*columns, console=console, **options)


def duration(seconds: float | None) -> str:
    """H:MM:SS ("-:--:--" when unknown)."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "-:--:--"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class LineProgress(Progress):
    """rich's Progress, drawing nothing, printing lines (see the module's docstring): a thread
    writes each unfinished task's line every `every` seconds, so work that reports no step
    for a while (a model being fitted) still shows in the log."""

    def __init__(
        self,
        *columns: Any,
        every: float | None = None,
        stream: IO[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(*columns, auto_refresh=False, **options)
        self.every = LINE_EVERY_S if every is None else every
        self.stream = stream
        self._last: dict[TaskID, float] = {}
        self._printed: set[TaskID] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:  # no live display: a thread that writes lines
        if self.disable or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="dlw-progress", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        pass

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        for task in self.tasks:
            self._final(task)

    def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(*args, **kwargs)
        self._last[task_id] = self.get_time()
        return task_id

    def remove_task(self, task_id: TaskID) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is not None:
            self._final(task)
        super().remove_task(task_id)

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.every)):
            now = self.get_time()
            for task in self.tasks:
                if not task.finished and now - self._last.get(task.id, now) >= self.every:
                    self._last[task.id] = now
                    self._printed.add(task.id)
                    self._line(task)

    def _final(self, task: Task) -> None:
        if task.id in self._printed:
            self._printed.discard(task.id)
            self._line(task, final=True)

    def _line(self, task: Task, *, final: bool = False) -> None:
        what = Text.from_markup(str(task.description)).plain.strip() or "working"
        done, total = task.completed, task.total
        elapsed = duration(task.elapsed if task.elapsed is not None else 0.0)
        amount = f"{done:,.0f}/{total:,.0f} ({done / total:.0%})" if total else f"{done:,.0f}"
        if final:
            text = f"{what}: {amount}, done in {elapsed}"
        else:
            eta = duration(task.time_remaining) if total else "unknown"
            text = f"{what}: {amount}, {elapsed} so far, eta {eta}"
        stream = self.stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()
