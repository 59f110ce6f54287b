"""Project: init writes a commented config, load finds it, update_config keeps comments."""

from __future__ import annotations

import pytest
import yaml

from dlworkflow.config import validate_config
from dlworkflow.errors import ConfigError, DlwError, ProjectNotFoundError
from dlworkflow.project import Project


def test_init_writes_a_commented_config_that_validates(tmp_path):
    project = Project.init(tmp_path / "my project!")
    text = project.paths.config.read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 10
    assert "# Step 1 - define the problem" in text
    assert "dlw define --metric accuracy --target 0.95" in text
    config = validate_config(yaml.safe_load(text))
    assert config.name == "my-project"  # slug of the folder name
    assert config.problem.primary_metric is None and config.problem.target is None
    assert project.paths.state.is_dir()
    assert (project.paths.state / ".gitignore").read_text() == "*\n"
    assert Project.load(project.root).config == config


def test_init_with_name_and_model(tmp_path):
    project = Project.init(tmp_path / "p", name="digits", model="mlp")
    assert project.config.name == "digits"
    assert project.config.model.name == "mlp"


def test_init_refuses_to_overwrite_without_force(tmp_path):
    project = Project.init(tmp_path / "p")
    project.update_config({"problem.target": 0.8})
    before = project.paths.config.read_bytes()
    with pytest.raises(DlwError) as info:
        Project.init(tmp_path / "p")
    assert "already exists" in str(info.value)
    assert "--force" in info.value.fix
    assert project.paths.config.read_bytes() == before
    fresh = Project.init(tmp_path / "p", force=True)
    assert fresh.config.problem.target is None


def test_init_rejects_an_unknown_task(tmp_path):
    with pytest.raises(ConfigError) as info:
        Project.init(tmp_path / "p", task="image-captioning")
    assert "image-captioning" in str(info.value)
    assert not (tmp_path / "p" / "dlworkflow.yaml").exists()


def test_load_without_a_project_raises_with_a_fix(tmp_path):
    with pytest.raises(ProjectNotFoundError) as info:
        Project.load(tmp_path)
    assert str(tmp_path.resolve()) in str(info.value)
    assert "dlw init" in info.value.fix


def test_update_config_keeps_comments_and_writes_values(project):
    before = project.paths.config.read_text(encoding="utf-8")
    comments = [line.strip() for line in before.splitlines() if line.lstrip().startswith("#")]
    config = project.update_config(
        {
            "problem.target": 0.9,
            "problem.primary_metric": "macro_f1",
            "train.epochs": 3,
            "evaluate.bootstrap_samples": 200,
        }
    )
    after = project.paths.config.read_text(encoding="utf-8")
    for comment in comments:
        assert comment in after
    assert "max_latency_ms: null      # largest acceptable CPU latency" in after
    assert config.problem.target == 0.9
    reloaded = Project.load(project.root).config
    assert reloaded.problem.primary_metric == "macro_f1"
    assert reloaded.train.epochs == 3
    assert reloaded.evaluate.bootstrap_samples == 200  # section created where it was absent
    assert reloaded.train.batch_size == 64  # untouched siblings stay


def test_invalid_update_leaves_the_file_unchanged(project):
    before = project.paths.config.read_bytes()
    for updates in ({"problem.target": "high"}, {"train.epoch": 3}, {"split.train": 0.9}):
        with pytest.raises(ConfigError):
            project.update_config(updates)
        assert project.paths.config.read_bytes() == before
    assert project.config.problem.target is None


def test_invalid_yaml_syntax_gives_config_error(project):
    project.paths.config.write_text("name: p\ntrain: [1, 2\n  epochs: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Project.load(project.root)
    assert "not valid YAML" in str(info.value)
    assert "YAML syntax" in info.value.fix


def test_load_rejects_a_config_with_an_unknown_key(project):
    text = project.paths.config.read_text(encoding="utf-8")
    project.paths.config.write_text(text.replace("train:\n", "trian:\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Project.load(project.root)
    assert "trian: unknown key" in str(info.value)
    assert "did you mean train" in str(info.value)


def test_paths_follow_the_documented_layout(project):
    p = project.paths
    assert p.config == project.root / "dlworkflow.yaml"
    assert p.ledger == project.root / ".dlw" / "ledger.sqlite"
    assert p.manifest == project.root / ".dlw" / "manifest.parquet"
    assert p.split_dir == project.root / ".dlw" / "split"
    assert p.reports == project.root / "reports"
    assert p.mlflow_db == project.root / "mlruns.db"


def test_step_sets_the_active_step_only_while_it_runs(project):
    project.update_config({"problem.primary_metric": "accuracy", "problem.target": 0.5})
    assert project.active_step is None
    with project.step("define") as run:
        assert project.active_step is run
        assert run.step == "define"
        run.outputs = {"hash": "abc"}
    assert project.active_step is None
    assert project.upstream_hash("define") == "abc"
    with pytest.raises(KeyError), project.step("no-such-step"):
        pass
