"""Checkpoints of a training run, written every epoch, and `dlw train --resume`.

A checkpoint folder (`.dlw/train/run-N/checkpoint/`) holds

    epoch-0007.safetensors   the last epoch's weights ("model.*"), optimizer tensors
                             ("optim.state.<i>.<name>"), RNG states ("rng.*") and, with
                             train.ema_decay, the weight average ("ema.*")
    best-0005.safetensors    the best epoch's weights ("model.*")
    state.json               everything else: epoch, best metric and epoch, history, optimizer
                             scalars and param groups, scheduler state, python/numpy RNG
                             states, and the run's identity (ledger run, MLflow run, config)

Tensor files carry their epoch in the name and are written first; `state.json` is replaced
last (atomically) and names them, so a crash at any point leaves the previous complete
checkpoint. Nothing is pickled: tensors go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlworkflow.errors import TrainError
from dlworkflow.fileio import atomic_write_json, atomic_write_with, read_json
from dlworkflow.train.trainer import LoopState

if TYPE_CHECKING:
    from dlworkflow.ledger import RunRecord
    from dlworkflow.workspace import Workspace

STATE_FILE = "state.json"
FORMAT_VERSION = 1


class Checkpointer:
    """`save` is what a trainer callback calls at each checkpoint (`callbacks.checkpointing`);
    `meta` (JSON) is stored with each one."""

    def __init__(self, folder: str | Path, meta: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.meta = meta

    def save(self, state: LoopState) -> None:
        save_checkpoint(self.folder, state, meta=self.meta)


def save_checkpoint(folder: str | Path, state: LoopState, *, meta: dict[str, Any]) -> Path:
    """Write one epoch's checkpoint; the previous epoch's tensor files are then removed."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in state.model.items()}
    optim_scalars: dict[str, dict[str, Any]] = {}
    for index, values in state.optimizer["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.state.{index}.{name}"] = value
            else:
                optim_scalars.setdefault(str(index), {})[name] = value
    rng = state.rng
    tensors.update({"rng.torch": rng["torch"], "rng.shuffle": rng["shuffle"]})
    if rng.get("cuda") is not None:
        tensors["rng.cuda"] = rng["cuda"]
    tensors.update(state.ema or {})  # "ema.*": the weight average (train.ema_decay)
    epoch_file = f"epoch-{state.epoch:04d}.safetensors"
    atomic_write_with(folder / epoch_file, lambda p: save_file(_cpu(tensors), str(p)))
    best_file = f"best-{state.best_epoch:04d}.safetensors"
    if state.best_epoch > 0 and not (folder / best_file).is_file():
        best = {f"model.{k}": v for k, v in state.best_state.items()}
        atomic_write_with(folder / best_file, lambda p: save_file(_cpu(best), str(p)))
    py_version, py_state, py_gauss = rng["python"]
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = rng["numpy"]
    atomic_write_json(
        folder / STATE_FILE,
        {
            "format_version": FORMAT_VERSION,
            "epoch": state.epoch,
            "tensors_file": epoch_file,
            "best_file": best_file if state.best_epoch > 0 else None,
            "best_metric": _num(state.best_metric),
            "best_epoch": state.best_epoch,
            "history": [{k: _num(v) for k, v in row.items()} for row in state.history],
            "optimizer": {
                "scalars": optim_scalars,
                "param_groups": [
                    {k: v for k, v in g.items()} for g in state.optimizer["param_groups"]
                ],
            },
            "scheduler": state.scheduler,
            "rng": {
                "python": [py_version, list(py_state), py_gauss],
                "numpy": [
                    np_kind,
                    np.asarray(np_keys).tolist(),
                    int(np_pos),
                    int(np_has_gauss),
                    float(np_gauss),
                ],
            },
            "meta": meta,
        },
    )
    for old in folder.glob("*.safetensors"):
        if old.name not in (epoch_file, best_file):
            old.unlink(missing_ok=True)
    return folder


def load_checkpoint(folder: str | Path) -> tuple[LoopState, dict[str, Any]]:
    """(the LoopState to resume from, the meta stored with it)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    raw = read_json(folder / STATE_FILE)
    if raw.get("format_version") != FORMAT_VERSION:
        raise TrainError(
            f"The checkpoint in {folder} has an unknown format.",
            expected=f"format_version {FORMAT_VERSION}",
            received=str(raw.get("format_version")),
            fix="start a new run with `dlw train`",
        )
    tensors = load_file(str(folder / raw["tensors_file"]))
    model = _strip(tensors, "model.")
    best = (
        _strip(load_file(str(folder / raw["best_file"])), "model.")
        if raw["best_file"]
        else {k: v.clone() for k, v in model.items()}
    )
    state: dict[int, dict[str, Any]] = {}
    for key, value in _strip(tensors, "optim.state.").items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in raw["optimizer"]["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in g.items()}
        for g in raw["optimizer"]["param_groups"]
    ]
    py_version, py_state, py_gauss = raw["rng"]["python"]
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = raw["rng"]["numpy"]
    rng = {
        "python": (py_version, tuple(py_state), py_gauss),
        "numpy": (np_kind, np.asarray(np_keys, dtype=np.uint32), np_pos, np_has_gauss, np_gauss),
        "torch": tensors["rng.torch"],
        "shuffle": tensors["rng.shuffle"],
        "cuda": tensors.get("rng.cuda"),
    }
    return LoopState(
        epoch=raw["epoch"],
        model=model,
        optimizer={"state": state, "param_groups": groups},
        scheduler=raw["scheduler"],
        best_metric=_float(raw["best_metric"]),
        best_epoch=raw["best_epoch"],
        best_state=best,
        history=[{k: _float(v) for k, v in row.items()} for row in raw["history"]],
        rng=rng,
        ema={k: v for k, v in tensors.items() if k.startswith("ema.")} or None,
    ), raw["meta"]


@dataclass
class Resumable:
    """An interrupted train run to continue."""

    record: RunRecord  # its ledger record (failed, interrupted or never finished)
    folder: Path  # the run folder (its checkpoint/ inside)
    state: LoopState
    meta: dict[str, Any]

    @property
    def epochs_override(self) -> int | None:
        return self.meta.get("epochs_override")

    @property
    def mlflow_run_id(self) -> str | None:
        return self.meta.get("mlflow_run_id")


def find_resumable(project: Workspace, *, epochs: int | None = None) -> Resumable:
    """The last train run, if it did not finish and left a checkpoint of the same settings;
    otherwise a TrainError that says why and what to do."""
    record = project.ledger.latest("train", status=None)
    if record is None or record.status == "done":
        raise TrainError(
            "There is no interrupted train run to resume."
            if record is None
            else f"The last train run ({record.id}) finished: there is nothing to resume.",
            expected="a train run that failed or was interrupted after at least one epoch",
            received="no train run" if record is None else f"run {record.id}: done",
            fix="run `dlw train` (without --resume) to start a new run",
        )
    folder = checkpoint_of(project, record.id)
    if folder is None:
        raise TrainError(
            f"Train run {record.id} ({record.status}) stopped before its first epoch ended: "
            "it left no checkpoint to resume from.",
            expected=f"a checkpoint written by run {record.id}",
            received="none",
            fix="run `dlw train` to start a new run",
        )
    state, meta = load_checkpoint(folder)
    _check_same_settings(project, record, meta, epochs=epochs)
    return Resumable(record=record, folder=folder.parent, state=state, meta=meta)


def checkpoint_of(project: Workspace, ledger_run_id: int) -> Path | None:
    """The checkpoint folder last written by a ledger run (a resumed run writes into the
    folder of the run it continues)."""
    for state_file in sorted(project.paths.train_dir.glob(f"run-*/checkpoint/{STATE_FILE}")):
        try:
            meta = read_json(state_file).get("meta", {})
        except (OSError, ValueError):
            continue
        if meta.get("ledger_run_id") == ledger_run_id:
            return state_file.parent
    return None


def _check_same_settings(
    project: Workspace, record: RunRecord, meta: dict[str, Any], *, epochs: int | None
) -> None:
    from dlworkflow.steps import step_info

    saved = meta.get("epochs_override")
    if epochs is not None and epochs != (saved or meta.get("loop", {}).get("epochs")):
        raise TrainError(
            f"--epochs {epochs} differs from the interrupted run's "
            f"{saved or meta.get('loop', {}).get('epochs')} epochs.",
            fix="resume without --epochs (a resumed run keeps its settings), or start a new "
            "run with `dlw train --epochs N`",
        )
    config = project.config.with_overrides({"train.epochs": saved}) if saved else project.config
    current = config.section_hash(*step_info("train").config_sections)
    split = project.upstream_hash("split")  # (a warm start's weights are in the checkpoint)
    if current != record.config_hash or split != record.inputs.get("split"):
        what = (
            "the split"
            if split != record.inputs.get("split")
            else "model:, augment:, train: or seed in dlworkflow.yaml"
        )
        raise TrainError(
            f"Train run {record.id} cannot be resumed: {what} changed since it started, and "
            "a resumed run must continue with the same settings and data.",
            fix="undo the change to resume, or run `dlw train` to start a new run",
        )


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (copies: safetensors refuses tensors that share memory)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _num(value: Any) -> Any:
    """A JSON-exact number: floats as floats (inf/nan as strings), others unchanged."""
    if isinstance(value, (bool, int)) or value is None:
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, str) else value
