"""`dlw test`: the one-time evaluation on the sealed test set, judged against the target."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlworkflow.evaluate.bootstrap import bootstrap_interval
from dlworkflow.evaluate.gate import Verdict, judge
from dlworkflow.evaluate.predict import label_indices, load_model, predict_proba
from dlworkflow.fileio import sha256_json
from dlworkflow.metrics import METRICS, compute
from dlworkflow.results import StepResult
from dlworkflow.store import read_split_info
from dlworkflow.store.sealed import open_test_set

if TYPE_CHECKING:
    from dlworkflow.project import Project

EXIT_PASS, EXIT_FAIL = 0, 3


@dataclass
class TestResult(StepResult):
    __test__ = False  # not a pytest class

    verdict: Verdict
    n_samples: int
    accuracy: float
    model: str
    previous_reads: int
    seal_hash: str

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.verdict.passed else EXIT_FAIL

    def title(self) -> str:
        return f"Step 7: test verdict {self.verdict.verdict}"

    def rows(self) -> list[tuple[str, Any]]:
        v = self.verdict
        lo, hi = v.interval
        rows = [
            ("verdict", v.sentence()),
            (v.metric, f"{v.value:.4f}  ({v.confidence:.0%} bootstrap CI {lo:.4f} to {hi:.4f})"),
            ("target", f"{v.metric} >= {v.target}"),
            ("accuracy", f"{self.accuracy:.4f}"),
            ("test samples", f"{self.n_samples:,} (seal {self.seal_hash[:12]})"),
            ("model", self.model),
            ("test set use", self.reuse_note()),
        ]
        return [row for row in rows if not (row[0] == "accuracy" and v.metric == "accuracy")]

    def reuse_note(self) -> str:
        if self.previous_reads == 0:
            return "first use of this test set"
        return (f"WARNING: this test set had been used {self.previous_reads} time(s) before; "
                "each reuse makes the estimate more optimistic, and the report shows the count")


def test(project: Project) -> TestResult:
    """Evaluate the trained model on the sealed test set; the read is logged in the ledger."""
    metric, target = project.config.problem.require_success_criterion(needed_by="`dlw test`")
    METRICS.get(metric)
    info = read_split_info(project)
    model, meta = load_model(project)
    previous = len(project.ledger.test_reads(info.seal_hash))
    cfg = project.config.evaluate
    with project.step("test", inputs={"train": project.upstream_hash("train")}) as run:
        rows = open_test_set(project, purpose="final test against the success criterion")
        y_true = label_indices(rows, list(meta["classes"]))
        proba = predict_proba(project, model, meta, rows)
        value = compute(metric, y_true, proba)
        interval = bootstrap_interval(METRICS.get(metric), y_true, proba,
                                      n_resamples=cfg.bootstrap_samples,
                                      confidence=cfg.confidence, seed=project.config.seed)
        verdict = judge(metric=metric, value=value, interval=interval,
                        confidence=cfg.confidence, target=target)
        record = {"verdict": verdict.verdict, "metric": metric, "value": value,
                  "interval": list(interval), "target": target, "n": len(rows)}
        run.outputs = {"hash": sha256_json(record), **record}
        run.summary = {"headline": verdict.sentence(), "previous_reads": previous,
                       "accuracy": compute("accuracy", y_true, proba), **record}
    return TestResult(verdict=verdict, n_samples=len(rows), accuracy=run.summary["accuracy"],
                      model=str(meta.get("name")), previous_reads=previous,
                      seal_hash=info.seal_hash)
