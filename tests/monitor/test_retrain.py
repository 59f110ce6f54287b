"""`dlw retrain` on real MNIST (builtin:mnist5k's digits, written as PNG folders): a champion
trained on 500 digits; a challenger trained with 1,000 fresh digits more (warm start, for
retrain.epochs) beats it and is promoted; one trained on 600 fresh digits with shuffled
labels (1 epoch, no warm start) is kept out, after being killed twice and resumed; with a
target it cannot meet, the gate keeps it out before any export; the original test set keeps
its seal while the fresh samples form sealed slices; nothing new to train on trains nothing;
rollback restores any earlier champion. One scenario, built once for the module (~30 s on 2
idle CPU cores)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.errors import BusyError, SealedTestSetError, TrainError
from dlworkflow.fileio import read_json, run_lock
from dlworkflow.monitor.retrain import EXIT_KEPT_OUT, EXIT_PROMOTED, retrain
from dlworkflow.monitor.retrain_state import KEPT_OUT, PROMOTED, UNCHANGED, RetrainError
from dlworkflow.project import Project
from dlworkflow.runtime import versions as V
from dlworkflow.store import load_split, read_assignments, read_split_info
from dlworkflow.train import warm_start

CONFIG = {
    "model.params": {"channels": [8, 16], "convs_per_block": 1},
    "train.epochs": 5,
    "train.batch_size": 32,
    "train.learning_rate": 0.005,
    "train.threads": 2,
    "problem.primary_metric": "accuracy",
    "problem.target": 0.3,
    "evaluate.bootstrap_samples": 200,
    "evaluate.baselines": False,
}


class Killed(Exception):
    """Stands in for a retrain killed half-way (SIGKILL, a reboot)."""


def mnist_folders(root: Path) -> dict[str, Path]:
    """Real MNIST digits by class: main 50/class, good 100/class more, bad 60/class more
    with labels shuffled (seeded). None of the three share a digit."""
    from PIL import Image

    from dlworkflow.datasets.digits import _mnist5k_rows

    by_class: dict[str, list[np.ndarray]] = {}
    for label, image in _mnist5k_rows():
        by_class.setdefault(label, []).append(image)
    rng = random.Random(0)
    plan = {"main": (0, 50, False), "good": (50, 150, False), "bad": (150, 210, True)}
    for name, (lo, hi, shuffle) in plan.items():
        for label, images in sorted(by_class.items()):
            for k in range(lo, hi):
                target = rng.choice(sorted(by_class)) if shuffle else label
                path = root / name / target / f"mnist-{label}-{k:04d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[k]).save(path)
    return {name: root / name for name in plan}


def champion_project(root: Path, main: Path) -> Project:
    from dlworkflow.deploy.export import export

    project = Project.init(root / "proj", name="mnist-retrain")
    project.update_config(CONFIG)
    project.ingest(str(main), progress=False)
    project.split()
    project.train(progress=False)
    assert project.test().verdict.passed
    assert export(project).version == 1
    return project


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("retrain")
    folders = mnist_folders(root)
    project = champion_project(root, folders["main"])
    out = {
        "project": project,
        "folders": folders,
        "seal": read_split_info(project).seal_hash,
        "test_ids": _ids(project, "test"),
    }
    project.update_config({"retrain.epochs": 3})  # the warm-started challenger: 3, not 5
    out["good"] = retrain(project, str(folders["good"]), warm_start=True, progress=False)
    out["after_good"] = {
        "champion": V.champion(project.root),
        "fresh1": _ids(project, "fresh1"),
        "train_state": project.status().state_of("train"),
    }
    project.update_config({"retrain.epochs": 2})
    out["after_good"]["train_state_after_edit"] = project.status().state_of("train")
    project.update_config({"train.epochs": 1, "retrain.epochs": None})
    out["bad"] = _killed_twice_then_finished(project, folders["bad"], out)
    out["state_after_bad"] = read_json(project.paths.state / "retrain" / "state.json")
    project.update_config({"problem.target": 0.99})  # a decision setting: judged again
    out["gate"] = retrain(project, str(folders["bad"]), progress=False)
    out["train_runs"] = len(project.ledger.history("train"))
    out["again"] = retrain(project, str(folders["good"]), progress=False)
    return out


def _killed_twice_then_finished(project: Project, bad: Path, out: dict):
    """Killed after the first epoch's checkpoint, then during the comparison; the third run
    finishes. Also checks what an unfinished retrain refuses meanwhile."""
    import dlworkflow.evaluate.compare as compare_module
    from dlworkflow.train.checkpoint import Checkpointer

    original_save, original_compare = Checkpointer.save, compare_module.compare

    def save_then_die(self, state):
        original_save(self, state)
        raise Killed("killed after a checkpoint")

    def die(*args, **kwargs):
        raise Killed("killed while comparing")

    Checkpointer.save = save_then_die
    try:
        with pytest.raises(Killed):
            retrain(project, str(bad), progress=False)
    finally:
        Checkpointer.save = original_save
    with pytest.raises(RetrainError) as other:
        retrain(project, str(out["folders"]["good"]), progress=False)
    out["other_data_refused"] = other.value
    with (
        run_lock(project.paths.state / "locks" / "retrain.lock", what="a test"),
        pytest.raises(BusyError) as busy,
    ):
        retrain(project, str(bad), progress=False)
    out["busy"] = busy.value
    compare_module.compare = die
    try:
        with pytest.raises(Killed):
            retrain(project, str(bad), progress=False)
    finally:
        compare_module.compare = original_compare
    out["state_before_finish"] = read_json(project.paths.state / "retrain" / "state.json")
    return retrain(project, str(bad), progress=False)


def _ids(project: Project, split: str) -> set[str]:
    table = read_assignments(project)
    return set(table.loc[table["split"] == split, "sample_id"])


def test_a_challenger_trained_with_more_data_is_promoted(scenario):
    project, result = scenario["project"], scenario["good"]
    assert result.outcome == PROMOTED and result.exit_code == EXIT_PROMOTED == 0
    assert (result.champion, result.challenger) == (1, 2)
    assert scenario["after_good"]["champion"] == 2
    compared = result.comparison["compared"]
    assert compared["slices"] == ["test", "fresh1"]
    assert compared["difference"] >= project.config.retrain.margin
    assert compared["challenger"] > compared["champion"]
    assert compared["interval"][0] > 0  # better beyond doubt, on 300+ sealed samples
    record = project.ledger.history("retrain")[0]
    assert record.status == "done" and record.outputs["outcome"] == PROMOTED
    assert record.inputs["champion"] == "1" and record.inputs["challenger"] == "2"
    assert record.summary["compared"]["difference"] == compared["difference"]
    assert V.read_metadata(project.root, 2)["verdict"] == "PASS"
    assert result.figures() and result.figures()[0][1].startswith("data:image/png")


def test_warm_start_begins_from_the_champions_weights(scenario):
    project, result = scenario["project"], scenario["good"]
    assert result.warm_start
    run = next(r for r in project.ledger.history("train") if r.summary.get("warm_start"))
    v1 = V.read_metadata(project.root, 1)
    assert run.summary["warm_start"]["version"] == 1
    assert run.summary["warm_start"]["weights_sha256"] == v1["files"][V.WEIGHTS_FILE]
    assert run.inputs["init_from"] == v1["files"][V.WEIGHTS_FILE]
    assert "warm start from exported v1" in run.summary["transfer"]["reason"]
    # retrain.epochs: 3 of train.epochs' 5; the run read it from there, so train is done (not
    # stale) until retrain.epochs itself changes
    assert run.summary["epochs_run"] == 3 and run.summary["epochs_from"] == "retrain.epochs: 3"
    assert run.inputs["setting:train.epochs"] == "retrain.epochs"
    assert "epochs_override" not in run.summary
    assert scenario["after_good"]["train_state"] == "done"
    assert scenario["after_good"]["train_state_after_edit"] == "stale"
    with pytest.raises(TrainError) as other_model:
        warm_start.resolve(
            V.version_folder(project.root, 1), model="resnet18", classes=v1["classes"]
        )
    assert "Warm start impossible" in str(other_model.value)
    with pytest.raises(TrainError) as other_classes:
        warm_start.resolve(
            V.version_folder(project.root, 1), model="small_cnn", classes=v1["classes"][:-1]
        )
    assert "classes differ" in str(other_classes.value)
    from dlworkflow.models import create_model

    warm = warm_start.resolve(
        V.version_folder(project.root, 1) / V.WEIGHTS_FILE, model="small_cnn", classes=v1["classes"]
    )
    narrower = create_model(
        "small_cnn",
        num_classes=10,
        in_channels=1,
        image_size=(28, 28),
        channels=[4, 8],
        convs_per_block=1,
    )
    with pytest.raises(TrainError) as misfit:
        warm.load_into(narrower)
    assert "do not fit" in str(misfit.value) and "size mismatch" in misfit.value.received


def test_a_worse_challenger_is_kept_out_after_two_kills(scenario):
    project, result = scenario["project"], scenario["bad"]
    assert result.outcome == KEPT_OUT and result.exit_code == EXIT_KEPT_OUT == 3
    assert (result.champion, result.challenger, result.serving) == (2, 3, 2)
    assert V.champion(project.root) == 2
    compared = result.comparison["compared"]
    assert compared["slices"] == ["test", "fresh1", "fresh2"]
    assert compared["difference"] < project.config.retrain.margin
    assert "not better by the margin" in result.reason
    # resumed: training continued from its checkpoint, nothing was done twice
    assert {"ingest", "split", "train", "test", "export"} <= set(result.resumed)
    runs = project.ledger.history("train")  # champion, good challenger, bad one (2 runs)
    failed = [r for r in runs if r.status == "failed"]
    done = [r for r in runs if r.status == "done" and r.summary.get("resumed_from")]
    assert len(failed) == 1 and len(done) == 1
    assert done[0].summary["resumed_from"] == failed[0].id
    assert [v["version"] for v in V.versions(project.root)] == [1, 2, 3]  # one export
    state = scenario["state_before_finish"]
    assert state["finished"] is None and set(state["stages"]) >= {"train", "test", "export"}
    final = scenario["state_after_bad"]
    assert final["finished"] and final["decision"]["outcome"] == KEPT_OUT
    retrains = project.ledger.history("retrain")
    assert [r.status for r in retrains].count("failed") == 1


def test_unfinished_or_running_retrains_refuse_other_runs(scenario):
    other, busy = scenario["other_data_refused"], scenario["busy"]
    assert "unfinished retrain" in str(other) and str(scenario["folders"]["bad"]) in other.fix
    assert busy.exit_code == 75 and "dlw retrain" in str(busy)


def test_a_challenger_that_fails_the_gate_is_neither_exported_nor_compared(scenario):
    project, result = scenario["project"], scenario["gate"]
    assert result.outcome == KEPT_OUT and result.exit_code == 3
    assert result.challenger is None and result.comparison is None and result.serving == 2
    assert "failed the gate" in result.reason and result.verdict.startswith("FAIL")
    assert [v["version"] for v in V.versions(project.root)] == [1, 2, 3]
    record = project.ledger.history("retrain")[-2]  # the last is the unchanged one
    assert record.outputs["outcome"] == KEPT_OUT and record.inputs["challenger"] == ""


def test_nothing_new_trains_nothing(scenario):
    project, result = scenario["project"], scenario["again"]
    assert result.outcome == UNCHANGED and result.exit_code == 0
    assert result.challenger is None and result.serving == 2
    assert len(project.ledger.history("train")) == scenario["train_runs"]
    assert "nothing changed since the retrain" in result.reason


def test_the_sealed_test_set_keeps_its_seal_and_fresh_slices_stay_sealed(scenario):
    project = scenario["project"]
    info = read_split_info(project)
    assert info.seal_hash == scenario["seal"]
    assert _ids(project, "test") == scenario["test_ids"]
    assert list(info.slices) == ["fresh1", "fresh2"]
    assert _ids(project, "fresh1") == scenario["after_good"]["fresh1"]
    assert all(sid.startswith("add1/") for sid in _ids(project, "fresh1"))
    assert not any(sid.startswith("add") for sid in _ids(project, "test"))
    with pytest.raises(SealedTestSetError):
        load_split(project, "fresh1")
    reads = project.ledger.test_reads()
    compares = [r for r in reads if r.step == "retrain"]
    assert {r.seal_hash for r in compares} == {
        info.seal_hash,
        info.slices["fresh1"]["seal_hash"],
        info.slices["fresh2"]["seal_hash"],
    }
    assert all("champion v" in r.purpose for r in compares)
    assert project.config.data.additions == [
        str(scenario["folders"]["good"]),
        str(scenario["folders"]["bad"]),
    ]


def test_rollback_restores_an_earlier_champion(scenario, tmp_path):
    root = scenario["project"].root
    assert V.rollback(root, to=1) == 1
    pointer = V.read_pointer(root)
    assert pointer["version"] == 1 and pointer["previous"][0] == 2
    assert V.rollback(root, to=1) == 1 and V.read_pointer(root)["previous"] == pointer["previous"]
    assert V.rollback(root) == 2 and V.champion(root) == 2  # back to the one before
    assert V.rollback(root, to=3) == 3  # a challenger that passed the gate may serve
    assert V.rollback(root, to=2) == 2
    failed = V.version_folder(root, 9)
    failed.mkdir()
    (failed / V.METADATA_FILE).write_text('{"version": 9, "verdict": "FAIL", "forced": null}')
    try:
        with pytest.raises(V.VersionError) as refused:
            V.rollback(root, to=9)
        assert "may not serve" in str(refused.value)
        with pytest.raises(V.VersionError):
            V.rollback(root, to=42)
    finally:
        (failed / V.METADATA_FILE).unlink()
        failed.rmdir()
    assert V.champion(root) == 2


def test_the_running_server_serves_the_rolled_back_champion(scenario, tmp_path):
    """`dlw serve` serves the promoted challenger; `dlw rollback` makes the previous champion
    serve again, hot-reloaded by the running server (no restart), then back."""
    import base64
    import json
    import time

    import httpx
    import simkit
    from typer.testing import CliRunner

    from dlworkflow.cli import app

    root = scenario["project"].root
    assert V.champion(root) == 2
    image = next((scenario["folders"]["good"] / "7").glob("*.png")).read_bytes()
    body = {"images": [base64.b64encode(image).decode()]}
    auth = {"Authorization": f"Bearer {simkit.TOKEN}"}

    def served_version(base: str, expected: int) -> int:
        deadline = time.monotonic() + 15
        while True:
            reply = httpx.post(f"{base}/v1/predict", json=body, headers=auth, timeout=10)
            assert reply.status_code == 200, reply.text
            version = reply.json()["model_version"]
            if version == expected or time.monotonic() > deadline:
                return version
            time.sleep(0.3)

    with simkit.served(root, tmp_path / "serve.log") as port:
        base = f"http://127.0.0.1:{port}"
        assert served_version(base, 2) == 2
        rolled = CliRunner().invoke(app, ["rollback", "-p", str(root), "--to", "1"])
        assert rolled.exit_code == 0, rolled.output
        assert served_version(base, 1) == 1  # hot-reloaded
        assert json.loads(httpx.get(f"{base}/v1/model", headers=auth).text)["version"] == 1
        back = CliRunner().invoke(app, ["rollback", "-p", str(root)])  # the one before: v2
        assert back.exit_code == 0, back.output
        assert served_version(base, 2) == 2
    assert V.champion(root) == 2
