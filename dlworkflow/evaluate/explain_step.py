"""`dlw explain`: why the trained model decides as it does, shown on samples of validation (or
train; the sealed test set is never read: rows come from dlworkflow.store.load_split).

It picks the N most confident mistakes and N correct predictions drawn at random (seeded with
the project's seed, so the same ones each time) and explains the predicted class of each:

- images: Grad-CAM on the last convolution of the network, laid over the image; a network
  without one (an MLP on pixels) gets integrated gradients instead (explain_image.py);
- texts: each token's attribution, layer integrated gradients on the word embedding
  (explain_text.py);
- tables: permutation importance on the split, and each chosen row's attributions, integrated
  gradients on the standardised features (explain_table.py).

Figures and explanations.json (the index: per item its sample, labels, confidence, kind and
figure) go to reports/explain/<split>/; the run is recorded in the ledger as step "explain".
Captum is imported only here, when explaining."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.errors import DlwError
from dlworkflow.evaluate.mistakes import confident_mistakes
from dlworkflow.fileio import atomic_write_json, sha256_json
from dlworkflow.models.predict import label_indices, load_model, model_task, predict_proba
from dlworkflow.results import StepResult
from dlworkflow.store import load_split

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

N_DEFAULT = 8
MAX_N = 64
INDEX = "explanations.json"
SUPPORTED = ("image-classification", "text-classification", "tabular-classification")


@dataclass
class ExplanationResult(StepResult):
    split: str
    model: str
    method: str
    items: list[dict[str, Any]] = field(default_factory=list)
    importance: dict[str, Any] | None = None
    index: str = ""
    seconds: float = 0.0
    root: str = field(default="", repr=False)

    def title(self) -> str:
        return f"Explanations on {self.split} (the test set stays sealed)"

    def count(self, kind: str) -> int:
        return sum(1 for item in self.items if item["kind"] == kind)

    def rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("method", self.method),
            ("model", self.model),
            ("most confident mistakes", self.count("mistake")),
            ("random correct predictions", self.count("correct")),
        ]
        if self.importance:
            top = [e["name"] for e in self.importance["features"][:3]]
            rows.append(("most important (permutation)", ", ".join(top)))
        rows += [("index", self.index), ("seconds", f"{self.seconds:.1f}")]
        return rows

    def figures(self) -> list[tuple[str, str | Path]]:
        bars = (self.importance or {}).get("figure")
        shown: list[tuple[str, str | Path]] = []
        if isinstance(bars, str):
            shown.append(("permutation importance", Path(self.root) / bars))
        return shown + [
            (
                f"{i['kind']}: {i['sample_id']} ({i['true']} -> {i['predicted']})",
                Path(self.root) / i["figure"],
            )
            for i in self.items
            if i.get("figure")
        ]

    def to_json(self) -> dict[str, Any]:
        """`dlw explain --json`: reports/explain/<split>/explanations.json and its path."""
        from dlworkflow.fileio import read_json

        return {"index": self.index, **read_json(Path(self.index))}


def pick(
    rows: Any, y: np.ndarray, proba: np.ndarray, classes: list[str], *, n: int, seed: int
) -> list[dict[str, Any]]:
    """The n most confident mistakes (most confident first), then n correct predictions
    drawn at random with `seed` (in split order)."""
    mistakes = confident_mistakes(rows, y, proba, classes, n=n, show_content=False)
    pred = proba.argmax(axis=1)
    right = np.flatnonzero(pred == y)
    chosen = np.sort(
        np.random.default_rng(seed).choice(right, size=min(n, len(right)), replace=False)
    )
    correct = [
        {
            "row": int(i),
            "sample_id": str(rows.iloc[int(i)]["sample_id"]),
            "true": classes[int(y[i])],
            "predicted": classes[int(pred[i])],
            "confidence": float(proba[i].max()),
            "p_true": float(proba[i, y[i]]),
        }
        for i in chosen
    ]
    return [{**m, "kind": "mistake"} for m in mistakes] + [
        {**c, "kind": "correct"} for c in correct
    ]


def explainer(modality: str) -> Any:
    if modality == "image":
        from dlworkflow.evaluate.explain_image import explain_images

        return explain_images
    if modality == "text":
        from dlworkflow.evaluate.explain_text import explain_texts

        return explain_texts
    from dlworkflow.evaluate.explain_table import explain_tables

    return explain_tables


def check_request(split: str, n: int) -> None:
    if split not in ("val", "train"):
        raise DlwError(
            f"dlw explain explains the validation or the train split, not {split!r}.",
            expected="--split val or --split train",
            received=repr(split),
            fix="the sealed test set is read by `dlw test` only"
            if split == "test"
            else "pass --split val (the default)",
        )
    if not 1 <= n <= MAX_N:
        raise DlwError(
            "--n is how many mistakes and how many correct predictions to explain.",
            expected=f"1 to {MAX_N}",
            received=str(n),
        )


def check_task(task_name: str, modality: str, kind: str) -> None:
    if kind != "classification" or modality not in ("image", "text", "tabular"):
        raise DlwError(
            f"dlw explain does not explain {task_name} models yet.",
            expected=f"a model for one of: {', '.join(SUPPORTED)}",
            received=task_name,
            fix="`dlw evaluate` measures which inputs the model relies on for every task "
            "(the importance section of reports/evaluate/<split>/)",
        )


def explain(project: Workspace, split: str = "val", n: int = N_DEFAULT) -> ExplanationResult:
    """Explain the trained model's most confident mistakes and random correct predictions
    on `split` (module docstring); recorded in the ledger as step 'explain'."""
    check_request(split, n)
    model, meta = load_model(project)
    task = model_task(project, meta)
    modality = str(meta.get("modality", "image"))
    check_task(task.name, modality, task.kind)
    rows = load_split(project, split)  # refuses 'test' (and the fresh slices) itself too
    start = time.perf_counter()
    with project.step("explain", inputs={"train": project.upstream_hash("train")}) as run:
        classes = list(meta["classes"])
        y = label_indices(rows, classes)
        rows, y = rows[y >= 0].reset_index(drop=True), y[y >= 0]
        if not len(y):
            raise DlwError(f"No labelled samples in the {split} split to explain.")
        proba = predict_proba(project, model, meta, rows)
        items = pick(rows, y, proba, classes, n=n, seed=project.config.seed)
        folder = project.paths.reports / "explain" / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):  # the last run's figures only
            old.unlink()
        info = explainer(modality)(project, model, meta, rows, items, folder, split=split)
        for item in items:
            item.pop("row", None)
        seconds = round(time.perf_counter() - start, 3)
        index = {
            "split": split,
            "model": str(meta.get("name")),
            "weights_sha256": meta.get("weights_sha256"),
            "task": task.name,
            "modality": modality,
            "seed": project.config.seed,
            "n_requested": n,
            "n_mistakes": sum(1 for i in items if i["kind"] == "mistake"),
            "n_correct": sum(1 for i in items if i["kind"] == "correct"),
            "n_samples": int(len(y)),
            **info,
            "items": items,
            "seconds": seconds,
        }
        atomic_write_json(folder / INDEX, index)
        record = {k: index[k] for k in ("split", "method", "n_mistakes", "n_correct", "seconds")}
        same = {k: v for k, v in index.items() if k != "seconds"}  # the same run, same hash
        run.outputs = {"hash": sha256_json(same), **record, "index": str(folder / INDEX)}
        run.summary = {
            "headline": f"{index['method']}: {record['n_mistakes']} mistakes and "
            f"{record['n_correct']} correct predictions on {split}",
            **record,
        }
    return ExplanationResult(
        split=split,
        model=index["model"],
        method=index["method"],
        items=items,
        importance=index.get("importance"),
        index=str(folder / INDEX),
        seconds=seconds,
        root=str(project.root),
    )
