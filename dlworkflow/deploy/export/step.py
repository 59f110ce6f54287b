"""`dlw export`: the trained model -> models/v<N>/ (ONNX + safetensors + metadata.json),
only after `dlw test` said PASS (or with --force --reason), and only if ONNX Runtime computes
the same outputs as PyTorch on the whole validation split (the parity check).

The ONNX graph returns the network's raw outputs ("logits"); metadata.json "outputs" says how
they become predictions for the model's task (`task.outputs(logits, target)` with the target
that travels with the model: regression's target scaling, multi-label thresholds), which is
what the runtime bundle applies. The parity check compares those task outputs of PyTorch and
ONNX Runtime (max abs difference: probabilities, or values in the target's units) and the
predictions themselves (the same class, value within tolerance, or the same label set).

A PASS export becomes the champion (`dlw serve` and `dlw predict` use it), unless
`promote=False` (`dlw retrain` exports its challenger so, and promotes it only when it beats
the champion); a forced export is kept but promoted only by `dlw promote VERSION`. The version
folder is built under a hidden temporary name and renamed into place when complete, so a
failed export leaves nothing behind.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.deploy.export import dense_parity
from dlworkflow.errors import DlwError, StepOrderError
from dlworkflow.fileio import atomic_write_json, sha256_file, sha256_json
from dlworkflow.ledger import git_commit
from dlworkflow.results import StepResult
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import FORMAT, Bundle, load_bundle
from dlworkflow.runtime.observe import runtime_inputs
from dlworkflow.runtime.spec import example_input, input_spec
from dlworkflow.tasks import Task, task_of

if TYPE_CHECKING:
    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.workspace import Workspace

#: Parity thresholds: outputs may differ by float32 rounding only (probabilities by 1e-4;
#: regression values by 1e-4 of the target's standard deviation, at least 1e-4), and the
#: prediction must be the same for (almost) every validation sample.
MAX_ABS_DIFF = 1e-4
MIN_AGREEMENT = 0.999


@dataclass(frozen=True)
class Parity:
    """How the parity check judges one target kind: what the outputs are, the tolerance of
    their max abs difference, and which rows agree (the same prediction)."""

    compared: str  # what max_abs_diff measures
    agreement_of: str  # what agreement counts
    tolerance: Callable[[dict[str, Any]], float]
    agree: Callable[[Task, np.ndarray, np.ndarray, dict[str, Any]], np.ndarray]
    rule: str  # metadata.json "outputs" -> "rule": from the ONNX output to predictions
    # the max difference the tolerance bounds (default: of the outputs, element-wise)
    difference: Callable[[Task, np.ndarray, np.ndarray, dict[str, Any]], float] = (
        lambda task, a, b, target: float(np.abs(a - b).max()) if a.size else 0.0
    )


def _same_top_class(task: Task, a: np.ndarray, b: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    return np.asarray(a.argmax(1) == b.argmax(1))


def _within(task: Task, a: np.ndarray, b: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    return np.asarray(np.abs(a - b).max(axis=1) <= _value_tolerance(target))


def _value_tolerance(target: dict[str, Any]) -> float:
    return MAX_ABS_DIFF * max(1.0, abs(float(target.get("std", 1.0))))


def _same_labels(task: Task, a: np.ndarray, b: np.ndarray, target: dict[str, Any]) -> np.ndarray:
    names = [str(j) for j in range(a.shape[1])]
    first = task.prediction_columns(a, names, target)["labels"]
    second = task.prediction_columns(b, names, target)["labels"]
    return np.array([x == y for x, y in zip(first, second)], dtype=bool)


#: Per target kind (task.kind).
PARITY: dict[str, Parity] = {
    "classification": Parity(
        "probabilities",
        "same top class",
        lambda target: MAX_ABS_DIFF,
        _same_top_class,
        "probabilities = softmax(logits) over the classes (rows sum to 1); the predicted "
        "label is the class of the highest probability",
    ),
    "regression": Parity(
        "values in the target's units",
        "same value within tolerance",
        _value_tolerance,
        _within,
        "value = logits[:, 0] * target.std + target.mean (the network is trained on the "
        "standardised target; the value is in the target's units)",
    ),
    "multilabel": Parity(
        "label probabilities",
        "same label set",
        lambda target: MAX_ABS_DIFF,
        _same_labels,
        "probabilities = sigmoid(logits), one per label; label j is predicted where "
        "probabilities[:, j] >= target.thresholds[j] (tuned on validation)",
    ),
    "detection": Parity(
        "scores of matched boxes",
        "same boxes (count, class, IoU >= 0.99, score within 1e-3)",
        lambda target: dense_parity.SCORE_TOLERANCE,
        dense_parity.boxes_agree,
        "logits (N, C + 4, H/stride, W/stride): C class heatmap logits, log box width and "
        "height in feature-map cells, centre offsets; boxes = task.outputs(logits, target): "
        "sigmoid heatmaps, 3x3 peaks, the top target.max_detections, per-class NMS at "
        "target.nms_iou (numpy, no torch) -> (N, K, 6) [x1, y1, x2, y2 normalised to 0..1, "
        "score, class] padded with score 0 and class -1; served boxes have score >= "
        "target.score_threshold (tuned on validation), scaled to the image's pixels",
        dense_parity.box_difference,
    ),
    "segmentation": Parity(
        "per-pixel class probabilities",
        "same class per pixel",
        lambda target: dense_parity.PROBABILITY_TOLERANCE,
        dense_parity.pixels_agree,
        "probabilities = softmax(logits) over the classes at each pixel (N, C, H, W); the "
        "mask is the most probable class of each pixel, resized (nearest) to the image's size",
    ),
}
UNTESTED = "UNTESTED"
BATCH = 256


class ExportRefusedError(DlwError):
    """The trained model failed `dlw test`, or was never tested, and --force was not given."""

    exit_code = 3


class ParityError(DlwError):
    """ONNX Runtime does not reproduce the PyTorch model on the validation split."""


@dataclass
class ExportResult(StepResult):
    version: int
    folder: Path
    model: str
    verdict: str
    forced: dict[str, Any] | None
    parity: dict[str, Any]
    champion: int | None
    onnx_mb: float

    def title(self) -> str:
        return f"Step 7: exported model version {self.version}"

    def rows(self) -> list[tuple[str, Any]]:
        p = self.parity
        rows = [
            ("folder", str(self.folder)),
            ("model", self.model),
            ("test verdict", self.verdict),
            ("parity (validation)", _parity_text(p)),
            ("model.onnx", f"{self.onnx_mb:.2f} MB"),
        ]
        if self.forced:
            rows.append(
                ("FORCED", f"{self.forced['reason']} ({self.forced['by']}, {self.forced['at']})")
            )
        if self.champion == self.version:
            rows.append(
                ("champion", f"v{self.version} (served by `dlw serve`, used by `dlw predict`)")
            )
        else:
            current = f"v{self.champion}" if self.champion else "none"
            rows.append(
                (
                    "champion",
                    f"unchanged: {current}; `dlw promote {self.version}` to serve this one",
                )
            )
        return rows


def _parity_text(p: dict[str, Any]) -> str:
    compared = p.get("compared", "probabilities")
    if compared == "probabilities":  # classification: as it always read
        return (
            f"max |p_torch - p_onnx| {p['max_abs_diff']:.2e}, "
            f"agreement {p['agreement']:.2%} on {p['n']:,} samples"
        )
    return (
        f"max |torch - onnx| {p['max_abs_diff']:.2e} ({compared}), agreement "
        f"{p['agreement']:.2%} ({p.get('agreement_of')}) on {p['n']:,} samples"
    )


def current_verdict(project: Workspace) -> tuple[str, dict[str, Any]]:
    """("PASS" | "FAIL" | "UNTESTED", the test's ledger outputs) for the trained model now in
    place: a test of other weights does not count. The latest finished `dlw test` must have
    judged the trained pointer's weights (its "weights_sha256"), the weights file on disk
    must hash to them, and they must be the last finished train run's: a train that ran
    after the test, or one interrupted (Ctrl-C, a kill, a failed ledger write) after it
    wrote new weights, leaves the model UNTESTED ("untested_because" says why)."""
    record = project.ledger.latest("test")
    if record is None:
        return UNTESTED, {}
    if record.inputs.get("train") != project.upstream_hash("train"):
        return UNTESTED, {"untested_because": "a later train run replaced the tested model"}
    problem = _weights_problem(project, record.outputs.get("weights_sha256"))
    if problem:
        return UNTESTED, {"untested_because": problem}
    outputs = dict(record.outputs)
    outputs.setdefault("headline", record.summary.get("headline"))
    return str(outputs.get("verdict", UNTESTED)), outputs


def _weights_problem(project: Workspace, judged: Any) -> str | None:
    """Why the trained weights are not the ones `dlw test` judged (None: they are)."""
    from dlworkflow.store import read_trained_pointer

    if not judged:
        return "the test did not record the weights it judged (run `dlw test` again)"
    try:
        pointer = read_trained_pointer(project)
    except DlwError:
        return "there is no trained model"
    if pointer.get("weights_sha256") != judged:
        return (
            "the trained weights are not the ones `dlw test` judged (sha256 "
            f"{str(pointer.get('weights_sha256'))[:12]}... trained, {str(judged)[:12]}... "
            "tested): a train run after the test, or one that stopped before it finished"
        )
    weights = _weights_file(project, pointer)
    try:
        on_disk = sha256_file(weights)
    except OSError:
        return f"the trained weights {weights} cannot be read"
    if on_disk != judged:
        return f"the weights file {weights} changed after `dlw test` judged it"
    return None


def _weights_file(project: Workspace, pointer: dict[str, Any]) -> Path:
    from dlworkflow.fileio import read_json

    folder = Path(pointer["folder"])
    try:
        name = read_json(folder / "model.json").get("weights_file") or "model.safetensors"
    except (OSError, ValueError, AttributeError):
        name = "model.safetensors"
    return folder / str(name)


def export(
    project: Workspace, *, force: bool = False, reason: str | None = None, promote: bool = True
) -> ExportResult:
    """Export the trained model as models/v<N>/. promote: a PASS export becomes the champion
    (False: kept beside it, as `dlw retrain` does with a challenger until it is compared)."""
    from dlworkflow.models import load_trained
    from dlworkflow.store import read_trained_pointer

    if force and not (reason and reason.strip()):
        raise DlwError(
            "--force needs a reason, recorded with the exported model.",
            expected='--force --reason "why this model may be deployed"',
            received="no reason",
            fix='add --reason "..."',
        )
    pointer = read_trained_pointer(project)
    verdict, test = current_verdict(project)
    if verdict != "PASS" and not force:
        what = (
            "was never tested"
            if verdict == UNTESTED and not test.get("untested_because")
            else f"was not tested: {test['untested_because']}"
            if verdict == UNTESTED
            else f"failed the test ({test.get('headline') or verdict})"
        )
        raise ExportRefusedError(
            f"The trained model {what}: it is not exported.",
            expected="a PASS from `dlw test` for the model now trained",
            received=verdict,
            fix="run `dlw test` (once) and export a model that passes; or, knowing why, "
            'export anyway with --force --reason "..." (recorded in the metadata and ledger)',
        )
    forced = (
        None
        if verdict == "PASS"
        else {  # a PASS model needs no forcing
            "reason": str(reason).strip(),
            "by": _user(),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "verdict": verdict,
        }
    )

    model, meta = load_trained(pointer["folder"])
    root = project.root
    inputs = {"train": project.upstream_hash("train") or "", "test_verdict": verdict}
    with project.step("export", inputs=inputs) as run:
        version = V.next_version(root)
        final = V.version_folder(root, version)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{version}.", suffix=".tmp", dir=final.parent))
        try:
            metadata = _write_folder(
                project, tmp, version, model, meta, pointer, verdict, test, forced
            )
            bundle = load_bundle(tmp, threads=1)
            parity = parity_check(project, model, meta, bundle)
            metadata["parity"] = parity
            metadata["feature_cost"] = _feature_cost(project, bundle)
            atomic_write_json(tmp / V.METADATA_FILE, metadata)
            if not parity_passed(parity):
                raise ParityError(
                    "ONNX Runtime does not reproduce the PyTorch model on the validation split: "
                    "the export is discarded.",
                    expected=f"max abs difference of {parity['compared']} <= "
                    f"{parity['tolerance']:g} and prediction agreement >= "
                    f"{MIN_AGREEMENT:.1%}",
                    received=f"{parity['max_abs_diff']:.3g} and {parity['agreement']:.2%} "
                    f"on {parity['n']} samples",
                    fix="report this model as not exportable; pick another model (`dlw models`)",
                )
            if verdict == "PASS" and metadata["files"][V.WEIGHTS_FILE] != test["weights_sha256"]:
                raise ExportRefusedError(
                    "The weights copied into the export are not the ones `dlw test` judged: "
                    "the trained model changed during the export.",
                    expected=f"sha256 {str(test['weights_sha256'])[:16]}...",
                    received=f"sha256 {metadata['files'][V.WEIGHTS_FILE][:16]}...",
                    fix="run `dlw export` again when no `dlw train` is running",
                )
            if final.exists():
                raise DlwError(
                    f"Another export created {final.name} meanwhile.",
                    fix="run `dlw export` again (one export at a time)",
                )
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if forced is None and promote:
            V.promote(root, version)
        champion = V.champion(root)
        record = {
            "version": version,
            "verdict": verdict,
            "forced": forced,
            "parity": parity,
            "onnx_sha256": metadata["files"][V.ONNX_FILE],
            "champion": champion,
            "promoted": champion == version,
        }
        run.outputs = {"hash": sha256_json(record), **record}
        run.summary = {
            "headline": f"exported v{version} ({metadata['model']}, {verdict}"
            f"{', FORCED: ' + forced['reason'] if forced else ''})",
            "folder": str(final),
            "feature_cost": metadata["feature_cost"],
            "schema": bool(metadata.get("schema")),
        }
    return ExportResult(
        version=version,
        folder=final,
        model=metadata["model"],
        verdict=verdict,
        forced=forced,
        parity=parity,
        champion=champion,
        onnx_mb=(final / V.ONNX_FILE).stat().st_size / 1e6,
    )


def parity_passed(parity: dict[str, Any]) -> bool:
    """The parity check's verdict. Written as `not (diff <= tolerance)`'s negation so that a
    NaN difference or agreement (a NaN in either runtime's outputs) fails it: every
    comparison with NaN is False."""
    return bool(
        parity["max_abs_diff"] <= parity["tolerance"] and parity["agreement"] >= MIN_AGREEMENT
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _write_folder(
    project: Workspace,
    folder: Path,
    version: int,
    model: Any,
    meta: ModelMeta,
    pointer: dict[str, Any],
    verdict: str,
    test: dict[str, Any],
    forced: dict[str, Any] | None,
) -> dict[str, Any]:
    from dlworkflow.models.onnx_export import to_onnx

    spec, prep = input_spec(meta)
    if spec["dtype"] == "float32" and meta.get("modality", "image") == "image":
        prep["max_pixels"] = int(project.config.data.max_image_pixels)
        prep["max_side"] = 65_500
    prep = _signal_limits(project, meta, prep)
    to_onnx(model, folder / V.ONNX_FILE, example=example_input({**meta, "preprocessing": prep}))
    weights = Path(pointer["folder"]) / meta.get("weights_file", "model.safetensors")
    shutil.copyfile(weights, folder / V.WEIGHTS_FILE)
    files = [V.ONNX_FILE, V.WEIGHTS_FILE]
    if meta.get("modality") == "text":  # the vocabulary travels with the model
        from dlworkflow.preprocess.text import tokenizer_file

        shutil.copyfile(tokenizer_file(), folder / V.TOKENIZER_FILE)
        files.append(V.TOKENIZER_FILE)
    config = project.config
    task = trained_task(project, meta)
    output_shape, target = _output_and_target(model, meta, task)
    metric = test.get("metric") or config.problem.primary_metric
    success_target = test.get("target", config.problem.target)
    metadata = {
        "format": FORMAT,
        "version": version,
        "model": meta["name"],
        "params": meta.get("params", {}),
        "task": task.name,
        "modality": meta.get("modality", "image"),
        "classes": [str(c) for c in meta["classes"]],
        "input": spec,
        "output": {"name": "logits", "dtype": "float32", "shape": ["batch", *output_shape]},
        "target": target,
        "outputs": outputs_section(task, {**meta, "target": target}, output_shape),
        "preprocessing": prep,
        "metric": metric,
        "success_target": success_target,
        "criterion": _criterion(task, metric, success_target),
        "verdict": verdict,
        "test_value": test.get("value"),
        "test_interval": test.get("interval"),
        "test_n": test.get("n"),
        "constraints": test.get("constraints"),
        "forced": forced,
        "parity": None,
        "dataset_version": meta.get("dataset_version"),
        "schema": _schema(project),
        "config_hash": sha256_json(config.model_dump(mode="json")),
        "commit": git_commit(project.root),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained": {
            "run_id": pointer.get("run_id"),
            "folder": pointer.get("folder_in_project"),
            "weights_sha256": meta.get("weights_sha256"),
        },
        "files": {name: sha256_file(folder / name) for name in files},
    }
    atomic_write_json(folder / V.METADATA_FILE, metadata)
    return metadata


def _signal_limits(project: Workspace, meta: ModelMeta, prep: dict[str, Any]) -> dict[str, Any]:
    """What the runtime checks a series or a clip against, with the export: a series model's
    data.max_gap (longer runs of missing steps are refused, shorter ones filled) and
    data.series.min_length / max_length; an audio model's ClipSettings (its own, the
    project's data.audio for any it lacks: sample rate, duration policy, byte and second
    limits). The model's own values win."""
    modality = meta.get("modality", "image")
    data = project.config.data
    if modality == "sequence":
        limits = {
            "max_gap": int(data.max_gap),
            "min_length": int(data.series.min_length),
            "max_length": int(data.series.max_length),
        }
        return {**limits, **prep}
    if modality == "audio":
        from dlworkflow.models.predict import clip_settings_of

        return {**prep, **clip_settings_of(project, meta).as_dict()}
    return prep


def _schema(project: Workspace) -> dict[str, Any] | None:
    """The feature schema of the data (metadata.json "schema"): `dlw serve` checks requests
    against it. It is the schema of the manifest the model was trained from (fresh additions'
    new category values included, so serve accepts what the model learned), else the stored
    one."""
    from dlworkflow.data.schema import infer_from_manifest, read_schema, serving_schema

    return serving_schema(infer_from_manifest(project) or read_schema(project))


def _feature_cost(project: Workspace, bundle: Bundle) -> dict[str, Any]:
    """The runtime path's preprocessing cost per sample on validation samples (cost.py)."""
    from dlworkflow.deploy.export.cost import feature_cost
    from dlworkflow.store import load_split

    return feature_cost(bundle, load_split(project, "val").reset_index(drop=True))


def trained_task(project: Workspace, meta: ModelMeta) -> Task:
    """The task the model was trained for (model.json "task"; older models: the project's)."""
    return task_of(str(meta.get("task") or project.config.task))


def _criterion(task: Task, metric: str | None, target: Any) -> str | None:
    """ "accuracy >= 0.95", "rmse <= 70" (None when the problem agreed none)."""
    if not metric or target is None:
        return None
    try:
        return task.metric(metric).criterion(float(target))
    except (DlwError, TypeError, ValueError):
        return None


def _output_and_target(model: Any, meta: ModelMeta, task: Task) -> tuple[list[int], dict[str, Any]]:
    """(the shape of one row of the ONNX output, the target that travels with the model).
    A dense model's output is a map: its shape is measured on a zero input, and the target
    records the input size [H, W] and the stride (input height / map height) when the
    trained target lacks them (detection decodes boxes with both)."""
    target = dict(meta.get("target") or {})
    if not task.dense:
        return [len(meta["classes"])], target
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(example_input(meta, n=1)))
    finally:
        model.train(was_training)
    shape = [int(s) for s in out.shape[1:]]
    size = [int(s) for s in meta["image_size"]]
    target.setdefault("input_size", size)
    if len(shape) == 3 and shape[1] != size[0]:
        target.setdefault("stride", max(1, size[0] // max(1, shape[1])))
    return shape, target


def outputs_section(
    task: Task, meta: ModelMeta, logits_shape: list[int] | None = None
) -> dict[str, Any]:
    """metadata.json "outputs": how the ONNX output "logits" becomes predictions, with the
    target that travels with the model (metadata.json "target", model.json's: regression's
    target scaling {"mean", "std"}, multi-label {"thresholds"}; detection's stride, input
    size, max detections, NMS IoU and score threshold; {} for classification).
    `logits_shape`: one row of the output (default: one value per class)."""
    names = [str(c) for c in meta["classes"]]
    target = dict(meta.get("target") or {})
    shape = list(logits_shape or [len(names)])
    example = task.prediction(
        task.outputs(np.zeros((1, *shape), dtype=np.float32), target)[0], names, target
    )
    return {
        "kind": task.kind,
        "names": names,
        "rule": PARITY[task.kind].rule + ' (target: metadata.json "target")',
        "prediction": sorted(example),
        "applied_by": "dlworkflow.runtime.bundle.Bundle.predict_outputs "
        "(task.outputs(logits, target)); `dlw serve` and `dlw predict` "
        "return task.prediction of each row",
    }


def parity_check(project: Workspace, model: Any, meta: ModelMeta, bundle: Bundle) -> dict[str, Any]:
    """PyTorch (training's own prediction path) vs ONNX Runtime (the runtime's path, from the
    files) on the whole validation split, BATCH rows at a time: the max difference of the
    task's outputs (probabilities, values in the target's units, scores of matched boxes,
    pixel probabilities) and the share of samples (segmentation: pixels) with the same
    prediction (top class, value within tolerance, label set, boxes, pixel class)."""
    from dlworkflow.models.predict import predict_logits
    from dlworkflow.store import load_split

    rows = load_split(project, "val").reset_index(drop=True)
    if len(rows) == 0:
        raise StepOrderError(
            "The validation split is empty: there is nothing to check the export on.",
            fix="re-split with a validation fraction > 0",
        )
    task, target = bundle.task, bundle.target
    rule = PARITY[task.kind]
    diff, agreed, counted = 0.0, 0.0, 0
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        torch_out = np.asarray(
            task.outputs(predict_logits(project, model, meta, chunk), target), dtype=np.float64
        )
        onnx_out = np.asarray(
            bundle.predict_outputs(runtime_inputs(bundle, chunk)), dtype=np.float64
        )
        step = float(rule.difference(task, torch_out, onnx_out, target))
        diff = float("nan") if np.isnan(step) or np.isnan(diff) else max(diff, step)
        same = np.asarray(rule.agree(task, torch_out, onnx_out, target), dtype=np.float64)
        agreed += float(same.sum())
        counted += int(same.size)
    return {
        "max_abs_diff": diff,
        "agreement": agreed / counted if counted else float("nan"),
        "n": int(len(rows)),
        "compared": rule.compared,
        "agreement_of": rule.agreement_of,
        "tolerance": float(rule.tolerance(target)),
    }
