"""The project's records the audit judges from, read once: the ledger, the trained model's
model.json, exported versions and the champion pointer, evaluation metrics.json, the privacy
record, the serving logs, the lr-find plot and the installed package versions."""

from __future__ import annotations

import json
import math
import subprocess
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import read_json
from dlworkflow.ledger import GIT, RunRecord, environment
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.prediction_logs import log_chains

if TYPE_CHECKING:
    from dlworkflow.tasks.base import MetricSpec, Task
    from dlworkflow.workspace import Workspace

MAX_LOG_LINES = 200_000  # prediction-log lines read (the newest file first)


class Evidence:
    def __init__(self, project: Workspace) -> None:
        self.project = project
        self.root = project.root
        self.config = project.config

    def latest(self, step: str) -> RunRecord | None:
        return self.project.ledger.latest(step)

    def history(self, step: str) -> list[RunRecord]:
        return [r for r in self.project.ledger.history(step) if r.status == "done"]

    @cached_property
    def train(self) -> RunRecord | None:
        return self.latest("train")

    @property
    def train_hash(self) -> str | None:
        return self.train.output_hash if self.train else None

    def for_current_model(self, step: str) -> RunRecord | None:
        """The latest `step` record of the trained model now in place (test, evaluate)."""
        record = self.latest(step)
        if record is None or self.train_hash is None:
            return None
        return record if record.inputs.get("train") == self.train_hash else None

    @cached_property
    def trained_meta(self) -> dict[str, Any] | None:
        """model.json of the trained model (.dlw/train/best.json's folder)."""
        from dlworkflow.store.trained import trained_meta

        return trained_meta(self.project)

    @cached_property
    def versions(self) -> list[dict[str, Any]]:
        return V.versions(self.root)

    @cached_property
    def pointer(self) -> dict[str, Any] | None:
        return V.read_pointer(self.root)

    @cached_property
    def champion(self) -> dict[str, Any] | None:
        number = V.champion(self.root)
        return next((m for m in self.versions if m.get("version") == number), None)

    @property
    def release(self) -> dict[str, Any] | None:
        """The champion's metadata, else the newest export's."""
        return self.champion or (self.versions[-1] if self.versions else None)

    def metrics(self) -> tuple[str, dict[str, Any]] | None:
        """(split, metrics.json) of the current model: its test, else its evaluation."""
        for step in ("test", "evaluate"):
            record = self.for_current_model(step)
            if record is None:
                continue
            split = "test" if step == "test" else str(record.outputs.get("split", "val"))
            path = self.project.paths.reports / "evaluate" / split / "metrics.json"
            try:
                return split, read_json(path)
            except (OSError, ValueError):
                continue
        return None

    @cached_property
    def task(self) -> Task:
        """The trained model's task (model.json `task`), else the configured one."""
        from dlworkflow.tasks import task_of

        return task_of(str((self.trained_meta or {}).get("task") or self.config.task))

    def metric_spec(self, metric: str | None = None) -> MetricSpec:
        """The direction of `metric` (default: the problem's primary metric) in the task."""
        from dlworkflow.report.task_view import spec

        return spec(
            self.task, metric or self.config.problem.primary_metric or self.task.default_metric
        )

    def not_applicable(self, what: str, why: str) -> str:
        """ "<what>: not applicable to <task> (<why>)"."""
        return f"{what}: not applicable to {self.task.name} ({why})"

    @cached_property
    def privacy(self) -> dict[str, Any] | None:
        from dlworkflow.store import read_privacy

        try:
            return read_privacy(self.project)
        except (OSError, ValueError):
            return None

    @cached_property
    def dataset_version(self) -> str | None:
        ingest = self.latest("ingest")
        return ingest.output_hash if ingest else None

    @cached_property
    def predictions(self) -> dict[str, Any]:
        """Served predictions in the prediction logs (.dlw/serve/predictions*.jsonl, one per
        server process): n, mean confidence (None when no entry has one: regression and
        multi-label predictions carry no single confidence), latency."""
        chains = log_chains(self.root)
        n, conf, n_conf, lat, kinds = 0, 0.0, 0, [], set()
        n_invariants = 0  # entries served outside the feature schema's soft expectations
        for path in (chain[-1] for chain in chains):  # each process's newest file
            try:
                with path.open(encoding="utf-8") as handle:
                    for line in handle:
                        if n >= MAX_LOG_LINES:
                            break
                        try:
                            entry = json.loads(line)
                        except ValueError:
                            continue
                        n += 1
                        if isinstance(entry.get("confidence"), (int, float)):
                            conf += float(entry["confidence"])
                            n_conf += 1
                        lat.append(float(entry.get("latency_ms", math.nan)))
                        kinds.add((entry.get("input") or {}).get("kind"))
                        n_invariants += bool((entry.get("input") or {}).get("invariants"))
            except OSError:
                pass
        lat = sorted(x for x in lat if math.isfinite(x))
        return {
            "n": n,
            "mean_confidence": conf / n_conf if n_conf else None,
            "latency_p50": lat[len(lat) // 2] if lat else None,
            "invariant_violations": n_invariants,
            "rotated": sum(len(chain) - 1 for chain in chains),
        }

    @cached_property
    def forced_serves(self) -> int:
        path = self.root / ".dlw" / "serve" / "forced.jsonl"
        try:
            return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line)
        except OSError:
            return 0

    @property
    def lr_find_plot(self) -> Path | None:
        path = self.project.paths.reports / "lr_find.png"
        return path if path.is_file() else None

    @cached_property
    def environment_now(self) -> dict[str, Any]:
        return environment()

    def git_tracked(self, name: str) -> bool:
        try:
            out = subprocess.run(
                [*GIT, "-C", str(self.root), "ls-files", "--error-unmatch", name],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return out.returncode == 0
