"""Step 6, `dlw train`: train the configured network on the train split, monitor validation,
record the run in the ledger and in MLflow, and save the best weights for `dlw test`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow import store
from dlworkflow.models import META_FILE, create_model, save_trained
from dlworkflow.results import StepResult
from dlworkflow.store.privacy import check_privacy_gate
from dlworkflow.train import tracking
from dlworkflow.train.progress import count_progress
from dlworkflow.train.tensors import image_format, load_train_val
from dlworkflow.train.trainer import FitResult, LoopConfig, fit, seed_everything

if TYPE_CHECKING:
    from pathlib import Path

    from dlworkflow.project import Project, StepRun

BEST_POINTER = "best.json"


@dataclass
class TrainResult(StepResult):
    model: str
    parameters: int
    metric: str
    best_metric: float
    best_epoch: int
    epochs_run: int
    val_accuracy: float
    seconds: float
    weights: str
    folder: str
    ledger_run_id: int
    mlflow_run_id: str
    browse: str
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list, repr=False)

    def title(self) -> str:
        return f"train: {self.model}"

    def rows(self) -> list[tuple[str, Any]]:
        stop = " (early stop)" if self.stopped_early else ""
        rows = [
            ("model", f"{self.model} ({self.parameters:,} parameters)"),
            ("epochs", f"best {self.best_epoch} of {self.epochs_run} run{stop}"),
            (f"best val {self.metric}", f"{self.best_metric:.4f}"),
            ("val accuracy", f"{self.val_accuracy:.4f}"),
            ("train time", f"{self.seconds:.1f} s"),
            ("weights", self.weights),
            ("MLflow run", self.mlflow_run_id),
            ("browse MLflow", self.browse),
        ]
        return [r for r in rows if not (r[0] == "val accuracy" and self.metric == "accuracy")]


def train(project: Project, *, epochs: int | None = None, progress: bool = True) -> TrainResult:
    """Train `model.name` with `train:` settings; `epochs` overrides train.epochs for this run."""
    privacy_accepted = check_privacy_gate(project)  # pii/phi: scanned, findings gone or accepted
    cfg = project.config
    split_info = store.read_split_info(project)  # raises StepOrderError before `dlw split`
    metric = cfg.problem.primary_metric or "accuracy"
    loop = LoopConfig.from_train_config(cfg.train, metric=metric, seed=cfg.seed, epochs=epochs)
    channels, size = image_format(project)
    started = time.perf_counter()
    overrides = {"train.epochs": epochs} if epochs is not None else None
    with project.step("train", inputs={"split": project.upstream_hash("split")},
                      overrides=overrides) as run:
        generator = seed_everything(cfg.seed, threads=cfg.train.threads)
        model = create_model(cfg.model.name, num_classes=len(split_info.classes),
                             in_channels=channels, image_size=size, **cfg.model.params)
        prep = model.preprocessing  # a pretrained backbone keeps the normalisation it learnt
        fixed = (prep["mean"], prep["std"]) if prep.get("fixed_normalisation") else None
        with count_progress("decoding images", enabled=progress) as report:
            data = load_train_val(project, split_info.classes, channels=channels, size=size,
                                  report=report, stats=fixed)
        model.preprocessing.update(mean=data.mean, std=data.std)
        tags = {tracking.LEDGER_TAG: str(run.run_id), "dlw.step": "train"}
        with tracking.tracked_run(project, run_name=f"{cfg.model.name}-run{run.run_id}",
                                  tags=tags) as tracker:
            tracker.log_params(run_params(project, split_info, loop, model, data))
            result = fit(model, data.x_train, data.y_train, data.x_val, data.y_val, loop,
                         generator=generator, callbacks=[tracker.on_epoch_end],
                         progress=progress)
            folder = project.paths.train_dir / f"run-{run.run_id}"
            meta = model_meta(project, split_info, result, data, metric, run, tracker.run_id)
            weights, digest = save_trained(folder, model, meta)
            tracker.log_metrics({f"best_val_{metric}": result.best_metric,
                                 "best_epoch": result.best_epoch}, step=result.best_epoch)
            tracker.log_artifacts([weights, folder / META_FILE, project.paths.config])
        seconds = time.perf_counter() - started
        write_pointer(project, folder, run_id=run.run_id, mlflow_run_id=tracker.run_id,
                      digest=digest)
        record(run, result, model=cfg.model.name, metric=metric, weights=weights,
               digest=digest, mlflow_run_id=tracker.run_id, seconds=seconds, epochs=epochs,
               privacy_accepted=privacy_accepted)
    best = result.best
    return TrainResult(
        model=cfg.model.name, parameters=model.parameter_count(), metric=metric,
        best_metric=result.best_metric, best_epoch=result.best_epoch,
        epochs_run=result.epochs_run, val_accuracy=best["val_accuracy"], seconds=seconds,
        weights=str(weights), folder=str(folder), ledger_run_id=run.run_id,
        mlflow_run_id=tracker.run_id, browse=tracking.browse_hint(project),
        stopped_early=result.stopped_early, history=result.history,
    )


def run_params(project: Project, split_info: store.SplitInfo, loop: LoopConfig, model: Any,
               data: Any) -> dict[str, Any]:
    """Flat MLflow params: model spec, effective train settings, data identity."""
    cfg = project.config
    params: dict[str, Any] = {"model.name": cfg.model.name,
                              "model.parameters": model.parameter_count()}
    params.update({f"model.params.{k}": v for k, v in cfg.model.params.items()})
    params.update({f"train.{k}": v for k, v in cfg.train.model_dump().items()})
    params.update({
        "train.epochs": loop.epochs, "train.metric": loop.metric, "seed": cfg.seed,
        "data.dataset_version": split_info.dataset_version, "data.split_hash": split_info.hash,
        "data.classes": len(data.classes), "data.channels": data.channels,
        "data.size": f"{data.size[0]}x{data.size[1]}",
        "data.n_train": len(data.y_train), "data.n_val": len(data.y_val),
    })
    return params


def model_meta(project: Project, split_info: store.SplitInfo, result: FitResult, data: Any,
               metric: str, run: StepRun, mlflow_run_id: str) -> dict[str, Any]:
    """Everything `dlw test` needs to predict, plus where the model came from."""
    return {
        "classes": data.classes, "channels": data.channels, "size": list(data.size),
        "mean": data.mean, "std": data.std, "metric": metric,
        "val_metric": result.best_metric, "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "history": result.history,
        "dataset_version": split_info.dataset_version, "split_hash": split_info.hash,
        "seed": project.config.seed, "ledger_run_id": run.run_id,
        "mlflow_run_id": mlflow_run_id,
    }


def write_pointer(project: Project, folder: Path, *, run_id: int, mlflow_run_id: str,
                  digest: str) -> None:
    """`.dlw/train/best.json`: which trained model `dlw test` evaluates."""
    store.write_trained_pointer(project, {
        "folder": str(folder),
        "folder_in_project": folder.relative_to(project.root).as_posix(),
        "run_id": run_id, "mlflow_run_id": mlflow_run_id, "weights_sha256": digest,
    })


def record(run: StepRun, result: FitResult, *, model: str, metric: str, weights: Path,
           digest: str, mlflow_run_id: str, seconds: float, epochs: int | None,
           privacy_accepted: str | None = None) -> None:
    run.outputs = {"hash": digest, "weights": str(weights)}
    run.summary = {
        "headline": f"val {metric} {result.best_metric:.4f} "
                    f"(epoch {result.best_epoch}/{result.epochs_run})",
        "model": model, "val_metric": result.best_metric, "metric": metric,
        "val_accuracy": result.best["val_accuracy"], "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
        "mlflow_run_id": mlflow_run_id, "seconds": round(seconds, 2),
    }
    if epochs is not None:
        run.summary["epochs_override"] = epochs
    if privacy_accepted:
        run.summary["privacy_accepted"] = privacy_accepted
