"""CLI conventions: `dlw --version`, shell completion, --json errors and the JSON helper, and the
editor schema that `dlw init` writes (dlworkflow.schema.json, named by dlworkflow.yaml's first
line) and every rewrite of dlworkflow.yaml keeps."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from importlib.metadata import version as dist_version
from pathlib import Path

import jsonschema
import numpy as np
import yaml
from typer.testing import CliRunner

import dlworkflow
from dlworkflow.cli import app
from dlworkflow.config_schema import SCHEMA_FILE, SCHEMA_LINE, schema_text
from dlworkflow.errors import scrub
from dlworkflow.jsonout import dumps, jsonable
from dlworkflow.project import Project

DLW = Path(sys.executable).with_name("dlw")
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def dlw(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed `dlw` entry point in a fresh process."""
    return subprocess.run(
        [str(DLW), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **WIDE, **(env or {})},
        timeout=120,
    )


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE)


def test_version_is_the_package_metadata_version_and_imports_no_torch():
    assert dlworkflow.__version__ == dist_version("dlworkflow")
    done = dlw("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"dlw {dlworkflow.__version__}\n"
    probe = (
        "import sys\nfrom dlworkflow.cli import main\nsys.argv = ['dlw', '--version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip() == "False False"


def test_show_completion_prints_a_bash_script_that_completes_commands():
    # typer takes the shell as the option's value when shell detection is off
    shown = dlw(
        "--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    )
    assert shown.returncode == 0, shown.stderr
    assert "_dlw_completion()" in shown.stdout
    assert "_DLW_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _dlw_completion dlw" in shown.stdout
    # what that script runs when the user presses TAB after `dlw sta`
    completed = dlw(
        env={"_DLW_COMPLETE": "complete_bash", "COMP_WORDS": "dlw sta", "COMP_CWORD": "1"}
    )
    assert completed.returncode == 0
    assert completed.stdout.split() == ["status"]
    options = dlw(
        env={"_DLW_COMPLETE": "complete_bash", "COMP_WORDS": "dlw test --j", "COMP_CWORD": "2"}
    )
    assert options.stdout.split() == ["--json"]


def test_install_completion_writes_the_script_and_sources_it(tmp_path: Path):
    done = dlw(
        "--install-completion",
        "bash",
        env={"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
    )
    assert done.returncode == 0, done.stderr
    script = tmp_path / ".bash_completions" / "dlw.sh"
    assert "_dlw_completion" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def test_json_error_is_one_object_with_the_dlwerror_fields(tmp_path: Path):
    result = invoke("status", "-p", tmp_path / "missing", "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert set(error) == {
        "type",
        "what",
        "expected",
        "received",
        "fix",
        "context",
        "exit_code",
        "message",
    }  # the Errors table of json-output.md
    assert error["type"] == "ProjectNotFoundError" and error["exit_code"] == 2
    # a path under a temporary folder is named by its file name only (errors.scrub)
    assert error["what"] == scrub(f"No dlworkflow project in {tmp_path / 'missing'}.")
    assert error["expected"] == "a dlworkflow.yaml file in that folder"
    assert error["received"] == "none" and "dlw init DIR" in error["fix"]
    assert error["context"] == {} and error["message"].startswith(error["what"])
    assert "fix: run `dlw init DIR`" in result.stderr  # the person still reads it


def test_status_json_in_a_fresh_process_is_alone_on_stdout(tmp_path: Path):
    Project.init(tmp_path / "proj")
    done = dlw("status", "-p", tmp_path / "proj", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)  # the whole of stdout is one document
    assert set(status) == {"project", "steps", "next_command", "all_done", "test_reads"}
    assert status["project"] == str((tmp_path / "proj").resolve())
    assert [s["number"] for s in status["steps"]][:2] == [1, 2]
    assert status["steps"][0]["state"] == "not run" and status["test_reads"] == 0
    assert status["next_command"].startswith("dlw define --metric")
    assert status["all_done"] is False


def test_jsonable_makes_strict_json_of_numpy_paths_datetimes_and_nan():
    value = {
        "f": np.float32(0.5),
        "i": np.int64(3),
        "a": np.array([[1, 2]]),
        "nan": math.nan,
        "inf": np.float64("inf"),
        "p": Path("/x/y"),
        7: (1, {2}),
        "t": dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC),
        "b": np.bool_(True),
    }
    assert jsonable(value) == {
        "f": 0.5,
        "i": 3,
        "a": [[1, 2]],
        "nan": None,
        "inf": None,
        "p": "/x/y",
        "7": [1, [2]],
        "t": "2026-12-03T12:00:00+00:00",
        "b": True,
    }
    assert json.loads(dumps(value))["nan"] is None  # allow_nan=False would have raised


def test_init_writes_the_schema_line_and_a_schema_that_validates_the_yaml(tmp_path: Path):
    result = invoke("init", tmp_path / "proj")
    assert result.exit_code == 0, result.output
    config = tmp_path / "proj" / "dlworkflow.yaml"
    assert config.read_text().splitlines()[0] == SCHEMA_LINE
    assert SCHEMA_LINE == "# yaml-language-server: $schema=./dlworkflow.schema.json"
    schema_file = tmp_path / "proj" / SCHEMA_FILE
    printed = invoke("config", "schema")
    assert schema_file.read_text() == printed.stdout  # what `dlw config schema` prints
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    written = yaml.safe_load(config.read_text())
    assert list(validator(schema).iter_errors(written)) == []
    written["split"]["train"] = "most of it"
    written["model"]["nmae"] = "typo"
    errors = {tuple(e.absolute_path) for e in validator(schema).iter_errors(written)}
    assert {("split", "train"), ("model",)} <= errors


def test_rewrites_of_the_yaml_keep_the_first_line(tmp_path: Path):
    invoke("init", tmp_path / "proj")
    config = tmp_path / "proj" / "dlworkflow.yaml"
    defined = invoke("define", "-p", tmp_path / "proj", "--metric", "accuracy", "--target", "0.9")
    assert defined.exit_code == 0, defined.output
    project = Project.load(tmp_path / "proj")
    project.update_config({"train.epochs": 2, "problem.assumptions": ["labels are right"]})
    lines = config.read_text().splitlines()
    assert lines[0] == SCHEMA_LINE and lines[1].startswith("# dlworkflow project")
    assert (project.config.problem.target, project.config.train.epochs) == (0.9, 2)


def test_load_refreshes_an_outdated_schema_and_write_adds_the_line(tmp_path: Path):
    project = Project.init(tmp_path / "proj")
    schema_file = project.root / SCHEMA_FILE
    schema_file.write_text('{"stale": true}\n')
    Project.load(project.root)
    assert schema_file.read_text() == schema_text()
    # a project made before the schema line: --write adds the line and the file
    config = project.paths.config
    config.write_text(config.read_text().split("\n", 1)[1])
    schema_file.unlink()
    Project.load(project.root)
    assert not schema_file.exists()  # load only refreshes a schema the YAML names
    written = invoke("config", "schema", "--write", "-p", project.root)
    assert written.exit_code == 0, written.output
    assert config.read_text().splitlines()[0] == SCHEMA_LINE
    assert schema_file.read_text() == schema_text()
    again = invoke("config", "schema", "--write", "-p", project.root)
    assert "Up to date" in again.stdout
