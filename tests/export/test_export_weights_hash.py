"""Issue 14 (hardening): export ships only the weights `dlw test` judged. `dlw test` records
their sha256; export requires the trained pointer's weights_sha256 to equal it and the file
on disk to hash to it. A train after the test, a train interrupted (Ctrl-C) after it wrote
its weights, a failed ledger write, or weights replaced on disk never pair new weights with
an old PASS. The parity check fails on NaN."""

from __future__ import annotations

import json

import pytest

from dlworkflow.deploy.export import ExportRefusedError, ParityError, current_verdict
from dlworkflow.errors import LedgerError, StepOrderError
from dlworkflow.fileio import read_json, sha256_file
from dlworkflow.ledger import Ledger
from dlworkflow.runtime import versions as V
from modality_data import helpers


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A trained digits project of its own (these tests retrain it)."""
    return helpers("export/conftest.py").trained_digits(tmp_path_factory.mktemp("weights"))


def _pointer(project) -> dict:
    return read_json(project.paths.train_dir / "best.json")


def _passed(project) -> str:
    """Make the current trained weights tested (PASS); their sha256."""
    if current_verdict(project)[0] != "PASS":
        project.train(progress=False)  # the configured epochs (the cases train one)
    if current_verdict(project)[0] != "PASS":
        assert project.test().verdict.passed
    assert current_verdict(project)[0] == "PASS"
    return _pointer(project)["weights_sha256"]


def _refused(project) -> ExportRefusedError:
    before = V.versions(project.root)
    with pytest.raises(ExportRefusedError) as refused:
        project.export()
    assert V.versions(project.root) == before  # nothing exported
    return refused.value


def test_dlw_test_records_the_weights_it_judged(project):
    judged = _passed(project)
    record = project.ledger.latest("test")
    pointer = _pointer(project)
    weights = project.root / pointer["folder_in_project"] / "model.safetensors"
    assert record.outputs["weights_sha256"] == judged == sha256_file(weights)
    assert record.summary["weights_sha256"] == judged


def test_a_train_after_the_test_leaves_the_model_untested(project):
    _passed(project)
    project.train(epochs=1, progress=False)  # new weights, old PASS
    refused = _refused(project)
    assert current_verdict(project)[0] == "UNTESTED" and "not tested" in str(refused)


def test_ctrl_c_after_the_weights_were_written_cannot_use_the_old_pass(project, monkeypatch):
    judged = _passed(project)
    import dlworkflow.train.step as train_step

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C: weights and pointer written, ledger not finished

    monkeypatch.setattr(train_step, "record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        project.train(epochs=1, progress=False)
    monkeypatch.undo()
    assert _pointer(project)["weights_sha256"] != judged  # the pointer names new weights
    assert project.ledger.latest("train", status=None).status == "failed"
    refused = _refused(project)
    assert "not the ones `dlw test` judged" in str(refused)
    with pytest.raises(StepOrderError, match="stopped after writing its weights"):
        project.test()  # nor is the unrecorded model judged


def test_a_failed_ledger_write_cannot_use_the_old_pass(project, monkeypatch):
    judged = _passed(project)
    finish = Ledger.finish

    def failing(self, run_id, *, status, **kwargs):
        if status == "done":
            raise LedgerError("disk full", fix="free some space")
        return finish(self, run_id, status=status, **kwargs)

    monkeypatch.setattr(Ledger, "finish", failing)
    with pytest.raises(LedgerError):
        project.train(epochs=2, progress=False)
    monkeypatch.undo()
    assert _pointer(project)["weights_sha256"] != judged
    assert project.ledger.latest("train", status=None).status == "running"
    assert "not the ones `dlw test` judged" in str(_refused(project))


def test_weights_replaced_on_disk_after_the_test_are_not_exported(project):
    judged = _passed(project)
    folder = project.root / _pointer(project)["folder_in_project"]
    other = next(  # another run's weights and model.json, copied over the tested ones
        p
        for p in sorted(project.paths.train_dir.glob("run-*"))
        if (p / "model.json").is_file() and read_json(p / "model.json")["weights_sha256"] != judged
    )
    saved = {name: (folder / name).read_bytes() for name in ("model.safetensors", "model.json")}
    try:
        (folder / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
        meta = read_json(other / "model.json")
        (folder / "model.json").write_text(json.dumps(meta), encoding="utf-8")
        assert "changed after `dlw test` judged it" in str(_refused(project))
    finally:
        for name, data in saved.items():
            (folder / name).write_bytes(data)
    assert current_verdict(project)[0] == "PASS"


def test_a_nan_parity_difference_fails_the_export(project, monkeypatch):
    _passed(project)
    import dlworkflow.deploy.export.step as export_step

    real = export_step.parity_check

    def nan_parity(*args, **kwargs):
        return {**real(*args, **kwargs), "max_abs_diff": float("nan")}

    monkeypatch.setattr(export_step, "parity_check", nan_parity)
    before = V.versions(project.root)
    with pytest.raises(ParityError):
        project.export()
    assert V.versions(project.root) == before
    assert export_step.parity_passed({"max_abs_diff": 0.0, "tolerance": 1e-4, "agreement": 1.0})
    assert not export_step.parity_passed(
        {"max_abs_diff": 0.0, "tolerance": 1e-4, "agreement": float("nan")}
    )
    monkeypatch.undo()
    assert project.export().verdict == "PASS"  # the same model, a real parity check: exported
