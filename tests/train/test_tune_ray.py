"""`dlw tune --backend ray`: the same Optuna study run through Ray Tune, on a local Ray with 2
CPUs (ray.init(num_cpus=2) by the backend itself), 4 trials of 1 epoch on the real digits."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from dlworkflow.project import Project  # noqa: E402
from dlworkflow.train.tune import ray_backend  # noqa: E402

try:
    import ray  # noqa: F401
    from ray import tune as _ray_tune  # noqa: F401

    HAVE_RAY = True
except ImportError:  # pragma: no cover - ray is pinned in requirements.lock
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(
    not HAVE_RAY, reason="ray[tune] is not installed (the optional `ray` extra)"
)

SPACE = {
    "train.learning_rate": {"type": "log_uniform", "low": 1.0e-3, "high": 5.0e-2},
    "train.batch_size": {"type": "categorical", "choices": [32, 64]},
    "model.params.channels": {"type": "categorical", "choices": [[8, 16], [8, 8]]},
}


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tune_ray") / "proj"
    project = Project.init(root)
    project.define(metric="accuracy", target=0.9)
    project.update_config(
        {
            "model.name": "small_cnn",
            "model.params": {"channels": [8, 16], "convs_per_block": 1},
            "train.epochs": 1,
            "train.threads": 1,
            "tune.space": SPACE,
            "tune.trials": 4,
            "tune.epochs": 1,
            "tune.workers": 2,
            "tune.startup_trials": 2,
        }
    )
    project.ingest("builtin:digits", progress=False)
    project.split()
    return root


def _ray_processes(before: set[int]) -> list[str]:
    """Processes this test started that are still alive (children of this process)."""
    import psutil

    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if (
                child.pid not in before
                and child.is_running()
                and child.status() != psutil.STATUS_ZOMBIE
            ):
                alive.append(f"{child.pid} {child.name()}")
        except psutil.NoSuchProcess:
            pass
    return alive


@needs_ray
def test_a_ray_study_writes_the_same_optuna_study_and_leaves_no_process(digits_root):
    import psutil

    from dlworkflow.train.tune import study as study_mod

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    project = Project.load(digits_root)
    pointer_before = project.ledger.latest("train")
    started = time.perf_counter()
    result = project.tune(backend="ray", progress=False)
    seconds = time.perf_counter() - started

    assert result.backend == "ray" and result.n_trials == 4 and result.n_new == 4
    assert result.n_complete == 4 and result.n_failed == 0  # 1 epoch: nothing to prune
    assert 0.3 < result.best_value <= 1.0  # real accuracy on the validation split
    assert 1e-3 <= result.best_params["train.learning_rate"] <= 5e-2
    assert result.best_params["model.params.channels"] in ([8, 16], [8, 8])  # decoded

    # the same SQLite study the local backend uses (so --apply, resume and tune.html work)
    settings = study_mod.settings_for(project)
    assert settings.name == result.study
    study = study_mod.load(settings)
    trials = study.get_trials(deepcopy=False)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state.name == "COMPLETE" and t.intermediate_values == {1: t.value} for t in trials)
    attrs = [t.user_attrs for t in trials]
    assert all(a["backend"] == "ray" and a["epochs_run"] == 1 and a["mlflow_run_id"] for a in attrs)
    assert all(a["pid"] != __import__("os").getpid() for a in attrs)  # ran in Ray workers
    assert (Path(digits_root) / "reports" / "tune.html").exists()

    # MLflow: the study's run and one FINISHED child run per trial, tagged with the parent
    from dlworkflow.train import tracking

    client = tracking.open_client(project)
    for a in attrs:
        run = client.get_run(a["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == result.mlflow_run_id

    # discipline: no test-set read, and the trained-model pointer is untouched
    assert project.ledger.test_reads() == []
    assert project.ledger.latest("train") == pointer_before

    # Ray was started by the backend and shut down: nothing of it is left running
    deadline = time.monotonic() + 15
    while _ray_processes(before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes(before) == []
    assert not ray.is_initialized()
    print(f"ray study of 4 trials: {seconds:.1f} s")


@needs_ray
def test_ray_marks_stopped_trials_pruned_and_crashes_failed(tmp_path):
    """The searcher's bookkeeping, without a cluster: what Ray reports becomes the right
    Optuna state in the study."""
    from dlworkflow.config import ParamSpec

    study = optuna.create_study(
        direction="maximize", storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s"
    )
    space = {
        "train.learning_rate": ParamSpec(type="log_uniform", low=1e-4, high=1e-1),
        "model.params.channels": ParamSpec(type="categorical", choices=[[8, 16], [16, 32]]),
    }
    searcher = ray_backend._searcher_class()(study, space=space, mode="max", epochs=3, project=None)
    configs = [searcher.suggest(f"t{i}") for i in range(4)]
    assert [c[ray_backend.TRIAL_KEY] for c in configs] == [0, 1, 2, 3]
    assert all(c["model.params.channels"] in ([8, 16], [16, 32]) for c in configs)

    def result(epoch, value, best, finished, **attrs):
        return {
            "value": value,
            "best": best,
            "epoch": epoch,
            "finished": finished,
            **{ray_backend.ATTR + k: v for k, v in attrs.items()},
        }

    searcher.on_trial_result("t0", result(1, 0.5, 0.5, 0, pid=11))
    searcher.on_trial_result("t0", result(2, 0.7, 0.7, 0, pid=11))
    searcher.on_trial_complete("t0", result(3, 0.6, 0.7, 1, pid=11))  # ran all 3 epochs
    searcher.on_trial_complete("t1", result(1, 0.2, 0.2, 0, pid=12))  # ASHA stopped it
    searcher.on_trial_complete("t2", result(1, float("nan"), None, 1, error="ValueError: x"))
    searcher.fail_unfinished()  # t3: asked, never told (an interrupted study)
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "FAIL", "FAIL"]
    assert trials[0].value == 0.7 and trials[0].intermediate_values == {1: 0.5, 2: 0.7, 3: 0.6}
    assert trials[1].value == 0.2 and trials[1].user_attrs["epochs_run"] == 1  # last value
    assert trials[2].user_attrs["error"] == "ValueError: x"
    assert "interrupted" in trials[3].user_attrs["error"]
    assert trials[0].user_attrs["pid"] == 11 and trials[0].user_attrs["backend"] == "ray"


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ray_backend.RayNotInstalledError, match="ray") as info:
        ray_backend.require_ray()
    assert "dlworkflow[ray]" in info.value.fix


@needs_ray
def test_workers_import_this_dlworkflow():
    import dlworkflow

    here = str(Path(dlworkflow.__file__).resolve().parent)
    env = ray_backend.runtime_env(remote=False)
    assert env["env_vars"]["PYTHONPATH"].split(":")[0] == str(Path(here).parent)
    assert ray_backend.runtime_env(remote=True)["py_modules"] == [here]
