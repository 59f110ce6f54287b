"""`dlw status`: the state of each of the nine steps, what is stale and why, what to run next."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dlworkflow.errors import DataError
from dlworkflow.status import DONE, FAILED, NOT_RUN, STALE


def _by_number(report) -> dict[int, object]:
    return {s.number: s for s in report.steps}


def test_fresh_project_has_nothing_run_and_suggests_define(project):
    report = project.status()
    assert [s.number for s in report.steps] == list(range(1, 10))
    steps = _by_number(report)
    for ledger_step in ("define", "ingest", "explore", "split", "train", "test"):
        assert report.state_of(ledger_step) == NOT_RUN
    assert steps[8].state == NOT_RUN  # report
    assert steps[9].state == NOT_RUN and steps[9].command.startswith("dlw monitor")
    assert steps[5].state == NOT_RUN and "small_cnn" in steps[5].detail
    assert report.next_command.startswith("dlw define --metric accuracy --target 0.95")
    assert report.test_reads == 0
    assert report.state_of("monitor") == NOT_RUN
    with pytest.raises(KeyError):
        report.state_of("retrain")  # recorded in the ledger, part of step 9


def test_next_command_follows_the_workflow(project, digits_folder):
    project.define(metric="accuracy", target=0.9)
    report = project.status()
    assert report.state_of("define") == DONE
    assert report.next_command.startswith("dlw ingest SOURCE")
    project.ingest(str(digits_folder(5)), progress=False)
    assert project.status().next_command == "dlw explore"  # look at the data before splitting


def test_after_define_ingest_split_those_steps_are_done(split_project):
    report = split_project.status()
    for ledger_step in ("define", "ingest", "split"):
        assert report.state_of(ledger_step) == DONE
    steps = _by_number(report)
    assert steps[1].detail == "accuracy >= 0.9"
    assert steps[2].detail.startswith("60 samples, 3 classes, 0 quarantined")
    assert steps[4].detail.startswith("train 42, val 9, test 9; test sealed")
    assert report.state_of("train") == NOT_RUN
    assert report.state_of("explore") == NOT_RUN
    assert report.next_command == "dlw explore"  # the first step not done, in workflow order


@pytest.mark.parametrize(
    "updates",
    [
        {"split.train": 0.8, "split.val": 0.1, "split.test": 0.1},
        {"seed": 1},
    ],
)
def test_changing_split_config_makes_split_stale(split_project, updates):
    split_project.update_config(updates)
    report = split_project.status()
    assert report.state_of("split") == STALE
    assert _by_number(report)[4].detail == "config changed (split, seed)"
    assert report.state_of("ingest") == DONE
    assert report.state_of("define") == DONE
    assert report.next_command == "dlw explore"  # explore has not run; split comes after
    split_project.split()
    assert split_project.status().state_of("split") == DONE


def test_changing_the_problem_makes_define_stale(split_project):
    split_project.update_config({"problem.target": 0.95})
    report = split_project.status()
    assert report.state_of("define") == STALE
    assert "config changed (problem)" in _by_number(report)[1].detail
    assert report.state_of("split") == DONE  # split does not depend on the problem


def test_reingesting_changed_data_makes_split_stale(split_project, digits_folder):
    split_project.ingest(progress=False)  # same data: nothing becomes stale
    assert split_project.status().state_of("split") == DONE
    digits_folder(22)  # two more images per class in the same folder
    split_project.ingest(progress=False)
    report = split_project.status()
    assert report.state_of("ingest") == DONE
    assert report.state_of("split") == STALE
    assert _by_number(report)[4].detail == "ingest has new output since"


def test_failed_step_is_shown_with_its_message(project, tmp_path):
    project.update_config({"data.source": str(tmp_path / "missing")})
    with pytest.raises(DataError):
        project.ingest(progress=False)
    report = project.status()
    assert report.state_of("ingest") == FAILED
    assert "DataError: Data source" in _by_number(report)[2].detail


def test_criterion_in_the_file_without_define_run_is_pointed_out(project):
    project.update_config({"problem.primary_metric": "auroc", "problem.target": 0.8})
    report = project.status()
    assert report.state_of("define") == NOT_RUN
    assert "dlw define` validates it" in _by_number(report)[1].detail
    assert report.next_command == "dlw define"


def test_status_renders_for_terminal_and_notebook(split_project):
    split_project.update_config({"seed": 3})
    report = split_project.status()
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(report)
    text = buffer.getvalue()
    assert "stale" in text and "config changed (split, seed)" in text
    assert "next: dlw explore" in text
    html = report._repr_html_()
    assert html.count("<tr>") == 10  # header + nine steps
    assert "<code>dlw explore</code>" in html
