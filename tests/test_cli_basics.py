"""The `dlw` CLI: steps 1, 2 and 4, config inspection, status; errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.config import validate_config

WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def dlw(runner: CliRunner, *args: str):
    return runner.invoke(app, [str(a) for a in args], env=WIDE)


@pytest.fixture
def proj_dir(runner, tmp_path):
    folder = tmp_path / "proj"
    result = dlw(runner, "init", folder)
    assert result.exit_code == 0, result.output
    return folder


def test_help_lists_the_step_commands(runner):
    result = dlw(runner, "--help")
    assert result.exit_code == 0
    for command in ("init", "define", "ingest", "split", "status", "datasets", "config"):
        assert command in result.output


def test_init_creates_the_project_and_refuses_a_second_time(runner, proj_dir):
    config = proj_dir / "dlworkflow.yaml"
    assert config.is_file()
    assert validate_config(yaml.safe_load(config.read_text())).name == "proj"
    again = dlw(runner, "init", proj_dir)
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert "Traceback" not in again.output
    forced = dlw(runner, "init", proj_dir, "--force", "--name", "renamed")
    assert forced.exit_code == 0
    assert yaml.safe_load(config.read_text())["name"] == "renamed"


def test_define_writes_the_criterion(runner, proj_dir):
    missing = dlw(runner, "define", "-p", proj_dir)
    assert missing.exit_code == 2
    assert "dlw define --metric" in missing.output
    assert "Traceback" not in missing.output
    result = dlw(
        runner,
        "define",
        "-p",
        proj_dir,
        "--metric",
        "macro_f1",
        "--target",
        "0.9",
        "--constituency",
        "clinicians",
        "--constituency",
        "patients",
    )
    assert result.exit_code == 0, result.output
    assert "macro_f1 >= 0.9 on the sealed test set" in result.output
    problem = yaml.safe_load((proj_dir / "dlworkflow.yaml").read_text())["problem"]
    assert (problem["primary_metric"], problem["target"]) == ("macro_f1", 0.9)
    assert problem["constituencies"] == ["clinicians", "patients"]
    bad = dlw(runner, "define", "-p", proj_dir, "--metric", "f1score")
    assert bad.exit_code == 2
    assert "problem.primary_metric" in bad.output


def test_config_show_prints_every_default(runner, proj_dir):
    result = dlw(runner, "config", "show", "-p", proj_dir)
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["train"]["weight_decay"] == 0.0001  # a default not written in the file
    assert shown["evaluate"]["bootstrap_samples"] == 1000
    assert shown["split"] == {
        "train": 0.7,
        "val": 0.15,
        "test": 0.15,
        "stratify": True,
        "group_by": True,
        "duplicates": "refuse",
        "duplicates_reason": None,
        "use_source_split": False,
    }
    assert validate_config(shown).name == "proj"


def test_config_schema_is_valid_json_schema(runner):
    result = dlw(runner, "config", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["type"] == "object"
    assert {"problem", "data", "split", "train"} <= set(schema["properties"])


def test_status_on_a_fresh_project(runner, proj_dir):
    result = dlw(runner, "status", "-p", proj_dir)
    assert result.exit_code == 0, result.output
    assert "not run" in result.output and "maintain: monitor and retrain" in result.output
    assert "next: dlw define --metric accuracy --target 0.95" in result.output


def test_datasets_lists_the_builtins(runner):
    result = dlw(runner, "datasets")
    assert result.exit_code == 0
    assert "builtin:mnist5k" in result.output and "builtin:digits" in result.output
    assert "5,000" in result.output and "1,797" in result.output


def test_ingest_split_status_on_a_digits_folder(runner, proj_dir, digits_folder):
    folder = digits_folder(10)
    (folder / "0" / "broken.png").write_bytes(b"")
    ingested = dlw(runner, "ingest", folder, "-p", proj_dir)
    assert ingested.exit_code == 0, ingested.output
    assert "30 in 3 classes" in ingested.output
    assert "empty file" in ingested.output  # the quarantine reason is shown
    split = dlw(runner, "split", "-p", proj_dir)
    assert split.exit_code == 0, split.output
    assert "test seal" in split.output
    assert "train" in split.output and "21 (70.0%)" in split.output
    status = dlw(runner, "status", "-p", proj_dir)
    assert status.exit_code == 0
    lines = {
        line
        for line in status.output.splitlines()
        if "get data" in line or "prepare: split" in line
    }
    assert len(lines) == 2 and all("done" in line for line in lines)


def test_ingest_missing_source_exit_code_and_message(runner, proj_dir, tmp_path):
    result = dlw(runner, "ingest", tmp_path / "nope", "-p", proj_dir)
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_unknown_config_key_exit_code_2_without_traceback(runner, proj_dir):
    config = proj_dir / "dlworkflow.yaml"
    config.write_text(config.read_text().replace("train:\n", "trian:\n"))
    for command in (("status",), ("config", "show"), ("split",)):
        result = dlw(runner, *command, "-p", proj_dir)
        assert result.exit_code == 2, command
        assert "trian: unknown key" in result.output
        assert "did you mean train" in result.output
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)


def test_commands_outside_a_project_say_how_to_start(runner, tmp_path):
    result = dlw(runner, "status", "-p", tmp_path)
    assert result.exit_code == 2
    assert "No dlworkflow project" in result.output and "dlw init" in result.output


def test_importing_the_cli_does_not_import_heavy_packages():
    code = (
        "import sys, dlworkflow.cli\n"
        "try:\n"
        "    dlworkflow.cli.app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'pandas', 'mlflow', 'sklearn', 'pyarrow') "
        "if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "none"
    assert "Usage" in out.stdout  # the help really ran


def test_a_command_that_may_skip_the_teardown_still_flushes_and_keeps_its_exit_code():
    """`dlw demo` ends its process without the interpreter's teardown (cli._exit_now): what it
    printed is all there, the exit handlers ran, and the exit code is the command's."""
    import subprocess
    import sys

    code = (
        "import atexit, sys; from dlworkflow import cli; "
        "atexit.register(lambda: print('handlers ran')); cli._FAST_EXIT.append(True); "
        "sys.argv = ['dlw', '{}']; cli.main()"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code.format("--version")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0 and shown.stdout.startswith("dlw ")
    assert shown.stdout.rstrip().endswith("handlers ran")
    failed = subprocess.run(
        [sys.executable, "-c", code.format("no-such-command")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2 and "No such command" in failed.stderr


@pytest.mark.parametrize(
    ("task", "builtin"),
    [("sequence-classification", "gunpoint"), ("audio-classification", "sonic-pi")],
)
def test_init_hints_name_a_builtin_of_the_projects_task(runner, tmp_path, task, builtin):
    folder = tmp_path / "proj"
    assert dlw(runner, "init", folder, "--task", task).exit_code == 0
    config = (folder / "dlworkflow.yaml").read_text()
    assert f"dlw ingest builtin:{builtin}" in config and "mnist5k" not in config
    defined = dlw(runner, "define", "-p", folder, "--metric", "accuracy", "--target", "0.9")
    assert defined.exit_code == 0, defined.output
    status = dlw(runner, "status", "-p", folder)
    assert f"builtin:{builtin}" in status.output and "mnist5k" not in status.output
    ingest = dlw(runner, "ingest", "-p", folder)
    assert ingest.exit_code == 2
    assert f"dlw ingest builtin:{builtin}" in ingest.output and "mnist5k" not in ingest.output


def test_demo_and_init_help_list_every_registered_task(runner):
    from dlworkflow.demo_plans import demo_tasks
    from dlworkflow.tasks import task_names

    demo = dlw(runner, "demo", "--help")
    assert demo.exit_code == 0
    assert {"sequence-classification", "audio-classification"} <= set(demo_tasks())
    for task in demo_tasks():
        assert task in demo.output
    init = dlw(runner, "init", "--help")
    for task in task_names():
        assert task in init.output
