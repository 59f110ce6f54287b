"""Progress without a terminal: plain lines at least every LINE_EVERY_S while work goes on (a
fake interval here), with the amount done and an ETA, a last line when done; silence for short
work; rich's bar on a terminal."""

from __future__ import annotations

import io
import time

from rich.console import Console

from dlworkflow.progress import LineProgress, duration, progress_bar


def test_lines_come_while_work_goes_on_and_a_last_one_when_it_ends():
    out = io.StringIO()
    with LineProgress(every=0.05, stream=out) as bar:
        task = bar.add_task("[bold]reading[/] samples", total=400)
        for _ in range(4):
            bar.advance(task, 50)
            time.sleep(0.08)
        quiet = bar.add_task("waiting", total=None)  # no step at all: still reported
        time.sleep(0.15)
        bar.remove_task(quiet)
    lines = out.getvalue().splitlines()
    reading = [line for line in lines if line.startswith("reading samples: ")]
    assert len(reading) >= 3, lines
    assert any("/400 (" in line and "so far, eta " in line for line in reading)
    assert reading[-1].startswith("reading samples: 200/400 (50%), done in 0:00:0")
    assert [line for line in lines if line.startswith("waiting: 0")][-1].endswith("done in 0:00:00")


def test_short_work_prints_nothing():
    out = io.StringIO()
    with LineProgress(every=30, stream=out) as bar:
        task = bar.add_task("quick", total=10)
        bar.advance(task, 10)
    assert out.getvalue() == ""


def test_a_terminal_gets_the_bar_anything_else_the_lines():
    tty = Console(file=io.StringIO(), force_terminal=True)
    log = Console(file=io.StringIO(), force_terminal=False)
    assert type(progress_bar(console=tty)).__name__ == "Progress"
    assert isinstance(progress_bar(console=log, transient=True), LineProgress)
    assert duration(3725.4) == "1:02:05" and duration(None) == "-:--:--"
