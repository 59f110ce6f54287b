"""Issue 15, item 7: `dlw train` records whether dlworkflow.yaml is committed in git, clean, at
which commit (dlworkflow/vcs.py, one `git status` call; no git or no repository is recorded,
never an error); `dlw demo` makes its project a git repository with the spec committed before
training, as a scripted user (no identity needed, and without git it says so and goes on); a
change outside the model spec (`dlw retrain`'s data.additions) is recorded as such."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dlworkflow import vcs, workflow
from dlworkflow.demo_plans import demo_plan
from dlworkflow.project import Project
from dlworkflow.report.audit.judges_train import describe_spec, spec_committed
from dlworkflow.train.step import spec_record
from system_deps import missing_system_package


@pytest.fixture(autouse=True)
def _git_installed() -> None:
    if shutil.which("git") is None:
        missing_system_package("git")


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def no_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git with no user.name/user.email anywhere: an empty HOME, no system config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)


@pytest.fixture
def no_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which git is not found (the other programs dlw needs are not on it either,
    but these tests start none)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_the_states_of_dlworkflow_yaml_in_git(tmp_path: Path):
    project = Project.init(tmp_path / "proj", name="p")
    if vcs.file_state(tmp_path, "x")["state"] != vcs.NO_REPOSITORY:
        pytest.skip("the temporary folder is itself inside a git repository")
    state = lambda: vcs.file_state(project.root, "dlworkflow.yaml")  # noqa: E731
    assert state() == {
        "file": "dlworkflow.yaml",
        "state": "not a git repository",
        "commit": None,
        "clean": False,
    }
    git(project.root, "init", "-q")
    assert state()["state"] == "untracked" and state()["commit"] is None
    git(project.root, "add", "dlworkflow.yaml")
    assert state()["state"] == "added, not committed"
    git(project.root, "commit", "-q", "--no-verify", "-m", "spec")
    head = git(project.root, "rev-parse", "HEAD")
    committed = {"file": "dlworkflow.yaml", "state": "committed", "commit": head, "clean": True}
    assert state() == committed
    project.update_config({"train.epochs": 3})
    assert state()["state"] == "modified" and not state()["clean"]
    git(project.root, "rm", "-q", "--cached", "dlworkflow.yaml")
    (project.root / ".gitignore").write_text("dlworkflow.yaml\n")
    assert state()["state"] == "ignored by git"


def test_without_git_the_state_says_so(tmp_path: Path, no_git: None):
    project = Project.init(tmp_path / "proj", name="p")
    assert spec_record(project)["state"] == "git not installed"
    assert workflow_commit(project)["state"] == "git not installed"
    assert not (project.root / ".git").exists()


def workflow_commit(project: Project) -> dict:
    """The demo's commit step, its printed result returned as a dict."""
    seen: list = []
    workflow._commit_spec(project, workflow._Clock(seen.append))
    (result,) = seen
    assert isinstance(result, workflow.SpecInGit)
    return dataclasses.asdict(result)


def test_the_demo_commits_without_a_configured_identity(tmp_path: Path, no_identity: None):
    project = Project.init(tmp_path / "proj", name="p")
    done = workflow_commit(project)
    head = git(project.root, "rev-parse", "HEAD")
    assert done == {"state": "committed", "commit": head}
    assert git(project.root, "log", "-1", "--format=%an <%ae>") == (
        "dlw demo <demo@dlworkflow.invalid>"
    )
    assert git(project.root, "ls-files").split() == [
        ".gitignore",
        "dlworkflow.schema.json",
        "dlworkflow.yaml",
    ]
    assert spec_record(project)["clean"] is True


def test_a_change_outside_the_model_spec_is_recorded_as_such(tmp_path: Path):
    """`dlw retrain --data` adds data.additions before the challenger trains: the record
    lists that key and no model-spec key, so the audit still cites the commit."""
    project = Project.init(tmp_path / "proj", name="p")
    workflow_commit(project)
    project.update_config({"data.additions": ["incoming/scanner-b"]})
    record = spec_record(project)
    assert record["state"] == "modified"
    assert record["changed"] == ["data.additions"] and record["model_spec_changed"] == []
    assert spec_committed(record)
    assert "outside the model spec (data.additions)" in describe_spec(record, 7)
    project.update_config({"model.params": {"channels": [8, 16]}})
    record = spec_record(project)
    assert record["model_spec_changed"] == ["model.params.channels"]
    assert not spec_committed(record)


def test_the_demo_trains_on_a_committed_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The demo's own path on small real data (8x8 digits, 1 epoch; a target no model reaches,
    so it stops after the report): the train run records the demo's commit, clean."""
    mnist = demo_plan("image-classification")
    small = dataclasses.replace(
        mnist,
        write_source=lambda root: "builtin:digits",
        problem={**mnist.problem, "target": 0.9999},
        settings={**mnist.settings, "evaluate.baselines": False, "train.epochs": 1},
    )
    monkeypatch.setattr(workflow, "demo_plan", lambda task: small)
    shown: list = []
    project, _ = Project.demo(tmp_path / "demo", progress=False, on_result=shown.append)
    head = git(project.root, "rev-parse", "HEAD")
    assert [r.commit for r in shown if isinstance(r, workflow.SpecInGit)] == [head]
    spec = project.ledger.latest("train").summary["spec"]
    assert spec == {"file": "dlworkflow.yaml", "state": "committed", "commit": head, "clean": True}
    assert git(project.root, "status", "--porcelain") == ""  # generated files are ignored


def test_a_factory_network_s_code_is_part_of_the_spec(tmp_path: Path):
    """model.name "nets:small": nets.py in the project folder is model spec too; the record
    says whether it was committed, and the audit cites neither commit while it is not."""
    project = Project.init(tmp_path / "proj", name="p")
    (project.root / "nets.py").write_text(
        "from torch import nn\n\n\ndef small(num_classes, **kwargs):\n"
        "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))\n"
    )
    project.update_config({"model.name": "nets:small"})
    workflow_commit(project)
    record = spec_record(project)
    assert record["state"] == "committed" and record["source"]["file"] == "nets.py"
    assert record["source"]["state"] == "untracked" and not spec_committed(record)
    assert "the network's code nets.py was untracked" in describe_spec(record, 3)
    git(project.root, "add", "nets.py")
    git(project.root, "commit", "-q", "--no-verify", "-m", "network")
    record = spec_record(project)
    assert record["source"]["clean"] and spec_committed(record)


def test_a_network_object_is_not_the_committed_spec():
    """train(model=<nn.Module>) records overrides: the file's commit does not describe it."""
    spec = {"file": "dlworkflow.yaml", "state": "committed", "commit": "a" * 40, "clean": True}
    assert spec_committed(spec)
    live = {**spec, "overrides": ["model.name", "model.params"]}
    assert not spec_committed(live)
    assert "network object passed to train(model=...)" in describe_spec(live, 4)
