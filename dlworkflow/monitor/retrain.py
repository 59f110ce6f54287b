"""Step 9, `dlw retrain --data SOURCE`: champion against challenger.

    result = retrain(project, "/data/incoming", warm_start=None)   # == Project.retrain()
    result.exit_code    # 0 promoted (or nothing new), 3 kept out; BusyError (75) if running

1. lock      `.dlw/locks/retrain.lock`: one retrain at a time (BusyError, exit code 75).
2. record    SOURCE joins data.additions once (a path is stored absolute); its samples get
             ids add<N>/...
3. ingest    main source + additions: one manifest, a new dataset version. The same data as
             the champion's (or as the last retrain's, with the same train settings): nothing
             is trained, exit 0 ("unchanged").
4. split     old samples keep their split, the sealed test set stays as it was; the fresh
             samples' test share forms the sealed slice fresh<N>.
5. train     the challenger (warm start from the champion's weights with --warm-start or
             retrain.warm_start); an interrupted training resumes from its checkpoint.
6. test      the gate on the sealed test set (`dlw test`): FAIL -> kept out (exit 3).
7. export    the challenger as models/v<M>/, not promoted (ONNX, parity checked).
8. compare   ledger step "retrain": champion and challenger exported models on the sealed test
             set and every fresh slice (evaluate/compare.py); promoted only when challenger -
             champion >= retrain.margin on the rows of retrain.compare_on (in the metric's
             direction: champion - challenger >= margin for RMSE); the decision and the
             numbers go to the ledger.
   staleness the champion on this addition's sealed fresh slice against its test estimate:
             the decay with its interval (staleness.py), outputs["staleness"] of the
             ledger step "retrain", one per addition (the trend `dlw audit` and the report
             show).

`.dlw/retrain/state.json` records each finished stage (retrain_state.py): a killed retrain,
run again with the same --data, continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import TrainError
from dlworkflow.fileio import run_lock, sha256_json
from dlworkflow.monitor.retrain_state import (
    KEPT_OUT,
    PROMOTED,
    UNCHANGED,
    Decision,
    RetrainError,
    RetrainState,
    decide,
    load_state,
    save_state,
    state_path,
)
from dlworkflow.results import StepResult, png_data_uri
from dlworkflow.runtime import versions as V

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace

EXIT_PROMOTED, EXIT_KEPT_OUT = 0, 3
LOCK = "retrain.lock"


@dataclass
class RetrainResult(StepResult):
    data: str
    addition: int
    outcome: str  # promoted | kept out | unchanged
    reason: str
    champion: int  # the champion the challenger was measured against
    challenger: int | None  # its exported version (None: not exported)
    serving: int | None  # the champion after the decision
    verdict: str  # the challenger's test verdict headline ("" when not trained)
    margin: float
    compare_on: str
    dataset_version: str
    warm_start: bool
    comparison: dict[str, Any] | None = None
    staleness: dict[str, Any] | None = None  # the champion's decay on this addition
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)  # SplitInfo.slices
    seal: str = ""  # the test seal (unchanged by the retrain unless warned)
    resumed: list[str] = field(default_factory=list)  # stages taken from an interrupted run
    warnings: list[str] = field(default_factory=list)
    state_file: str = ""

    @property
    def promoted(self) -> bool:
        return self.outcome == PROMOTED

    @property
    def exit_code(self) -> int:
        return EXIT_KEPT_OUT if self.outcome == KEPT_OUT else EXIT_PROMOTED

    def title(self) -> str:
        if self.outcome == PROMOTED:
            return f"Step 9: challenger v{self.challenger} promoted over v{self.champion}"
        if self.outcome == UNCHANGED:
            return f"Step 9: nothing new to retrain on; v{self.serving} stays the champion"
        return f"Step 9: challenger kept out; v{self.serving} stays the champion"

    def rows(self) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = [
            ("decision", f"{self.outcome.upper()}: {self.reason}"),
            (
                "fresh data",
                f"{self.data} (data.additions #{self.addition}, ids add{self.addition}/...)",
            ),
            ("dataset version", self.dataset_version[:12]),
            ("champion", f"v{self.champion}"),
            ("challenger", f"v{self.challenger}" if self.challenger else "not exported"),
            ("serving now", f"v{self.serving}"),
        ]
        if self.verdict:
            rows.append(("challenger's test", self.verdict))
        if self.warm_start:
            rows.append(("warm start", f"from the champion v{self.champion}'s weights"))
        if self.staleness:
            from dlworkflow.evaluate.staleness import trend_words

            rows += [("staleness", line) for line in trend_words([self.staleness])]
        rows += _comparison_rows(self.comparison, margin=self.margin, on=self.compare_on)
        rows += [
            (name, f"{s['n']:,} sealed fresh samples (seal {s['seal_hash'][:12]})")
            for name, s in self.slices.items()
        ]
        if self.seal:
            rows.append(("test seal", self.seal[:12]))
        if self.resumed:
            rows.append(("resumed", "kept from the interrupted run: " + ", ".join(self.resumed)))
        rows += [("warning", w) for w in self.warnings]
        rows.append(("state", self.state_file))
        return rows

    def figures(self) -> list[tuple[str, Any]]:
        png = _comparison_png(self.comparison) if self.comparison else None
        uri = png_data_uri(png) if png else None
        return [("champion vs challenger", uri)] if uri else []


def retrain(
    project: Workspace,
    data: str,
    *,
    warm_start: bool | None = None,
    progress: bool = True,
    budget_minutes: float | None = None,
) -> RetrainResult:
    """Ingest `data` as fresh labelled data, train a challenger, and promote it only when it
    passes the gate and beats the champion by retrain.margin (module docstring).
    budget_minutes: the challenger's training budget (`dlw retrain --budget`; default
    train.budget_minutes)."""
    with run_lock(project.paths.state / "locks" / LOCK, what="dlw retrain"):
        return _Retrain(
            project, data, warm_start=warm_start, progress=progress, budget=budget_minutes
        ).run()


class _Retrain:
    """One retrain, stage by stage; each finished stage is saved in the state."""

    def __init__(
        self,
        project: Workspace,
        data: str,
        *,
        warm_start: bool | None,
        progress: bool,
        budget: float | None = None,
    ) -> None:
        self.project, self.root = project, project.root
        self.budget = budget
        self.data = normalise_source(data)
        self.warm_option = warm_start
        self.progress = progress
        self.resumed: list[str] = []
        self.warnings: list[str] = []

    # ---- the stages, in order --------------------------------------------------------------
    def run(self) -> RetrainResult:
        self.state = self._begin()
        self._record_addition()
        self._ingest()
        unchanged = self._nothing_new()
        if unchanged:
            return self._decide(
                self.state.champion, None, passed=False, verdict="", unchanged=unchanged
            )
        self._split()
        self._train()
        passed, verdict = self._test()
        challenger = self._export() if passed else None
        return self._decide(
            self._champion_to_beat(challenger), challenger, passed=passed, verdict=verdict
        )

    def _decide(
        self,
        champion: int,
        challenger: int | None,
        *,
        passed: bool,
        verdict: str,
        unchanged: str | None = None,
    ) -> RetrainResult:
        """The ledger step "retrain": compare (when there is a challenger), decide, promote."""
        comparison = None
        with self.project.step("retrain", inputs=self._inputs(champion, challenger)) as run:
            staleness = None
            if unchanged:
                decision = Decision(UNCHANGED, unchanged)
            else:
                staleness = self._staleness(champion)
                if challenger is not None:
                    comparison = self._compare(champion, challenger)
                decision = decide(
                    passed=passed,
                    verdict=verdict,
                    comparison=comparison,
                    margin=self.project.config.retrain.margin,
                )
            if decision.promote and challenger is not None:
                V.promote(self.root, challenger)
            record = self._record(decision, champion, challenger, verdict, comparison)
            if staleness is not None:
                record["staleness"] = staleness
            run.outputs = {"hash": sha256_json(record), **record}
            run.summary = {"headline": f"{decision.outcome}: {decision.reason}", **record}
        self.state.finish(self.project, record)
        return self._result(decision, record, comparison)

    def _begin(self) -> RetrainState:
        cfg = self.project.config
        cfg.problem.require_success_criterion(needed_by="`dlw retrain` (the gate)")
        champion = V.champion(self.root)
        if champion is None or V.champion_folder(self.root) is None:
            raise RetrainError(
                "There is no champion model to challenge.",
                expected="an exported champion (models/champion.json)",
                received="none",
                fix="take the project through `dlw test` and `dlw export` first: a retrain "
                "measures a challenger against the model that serves",
            )
        state = load_state(self.project)
        if state is not None and state.finished is None:
            if state.data != self.data:
                raise RetrainError(
                    f"An unfinished retrain of {state.data} exists (begun {state.created}).",
                    expected=f"--data {state.data}, to finish it",
                    received=f"--data {self.data}",
                    fix=f"run `dlw retrain --data {state.data}` to finish it, or delete "
                    f"{state_path(self.project)} to abandon it",
                )
            self._say(f"resuming the retrain begun {state.created}")
            if self.warm_option is not None and "train" not in state.stages:
                state.warm_start = bool(self.warm_option)
            return state
        self._check_source()
        warm = cfg.retrain.warm_start if self.warm_option is None else bool(self.warm_option)
        previous = state.summary() if state is not None else None
        state = RetrainState(
            data=self.data,
            champion=champion,
            warm_start=warm,
            seal=_seal(self.project),
            previous=previous,
        )
        save_state(self.project, state)
        return state

    def _check_source(self) -> None:
        """Refuse a source that cannot be read before it is written into the config."""
        from dlworkflow.data.sources import open_source

        if self.data == normalise_source(self.project.config.data.source or ""):
            raise RetrainError(
                "The fresh data is data.source itself.",
                expected="new labelled data",
                received=self.data,
                fix="point --data at the new samples only",
            )
        open_source(self.project, self.data)  # DataError with the reason if unusable

    def _record_addition(self) -> None:
        additions = list(self.project.config.data.additions)
        known = [normalise_source(a) for a in additions]
        if self.data in known:
            number = known.index(self.data) + 1
        else:
            self.project.update_config({"data.additions": [*additions, self.data]})
            number = len(additions) + 1
        if self.state.addition != number:
            self.state.addition = number
            save_state(self.project, self.state)

    def _ingest(self) -> None:
        if self._kept("ingest"):
            return
        self._say(f"ingesting data.source and {self.data} (addition {self.state.addition})")
        result = self.project.run_step("ingest", progress=self.progress)
        added: dict[str, Any] = next(
            (a for a in result.additions if a["number"] == self.state.addition), {}
        )
        self.state.mark(
            self.project,
            "ingest",
            {
                "hash": result.dataset_version,
                "n_samples": result.n_samples,
                "fresh_samples": added.get("n_samples", 0),
                "fresh_quarantined": added.get("n_quarantined", 0),
            },
        )

    def _nothing_new(self) -> str | None:
        """Why there is nothing to train on, or None. Only before training has begun."""
        if "train" in self.state.stages or "train_started" in self.state.stages:
            return None
        version = self.project.upstream_hash("ingest")
        meta = V.read_metadata(self.root, self.state.champion)
        if version == meta.get("dataset_version"):
            read = self.state.stages.get("ingest") or {}
            return (
                f"the dataset (version {str(version)[:12]}) is the one champion "
                f"v{self.state.champion} was trained on: no new sample to learn from "
                f"({read.get('fresh_samples', 0)} fresh samples read, "
                f"{read.get('fresh_quarantined', 0)} quarantined)"
            )
        last = self.state.previous or {}
        same = (
            last.get("dataset_version") == version
            and last.get("champion") == self.state.champion
            and last.get("train_config") == self._train_config()
            and last.get("decision_config") == self._decision_config()
        )
        if same:
            challenger = f"v{last['challenger']}" if last.get("challenger") else "not exported"
            return (
                f"nothing changed since the retrain finished {last.get('finished')} "
                f"(same data, champion, train and decision settings; its challenger, "
                f"{challenger}, was {last.get('outcome')})"
            )
        return None

    def _split(self) -> None:
        if self._kept("split"):
            return
        self._say("splitting: old samples keep their split, fresh test share -> fresh slice")
        result = self.project.run_step("split")
        if self.state.seal and result.seal_hash != self.state.seal:
            self.warnings.append(
                f"the sealed test set changed during the retrain (seal {self.state.seal[:12]} -> "
                f"{result.seal_hash[:12]}): data.source itself changed; champion and challenger "
                "are compared on the new test set, and the champion's recorded test estimate "
                "no longer applies"
            )
        self.state.mark(
            self.project,
            "split",
            {
                "hash": result.split_hash,
                "seal": result.seal_hash,
                "slices": {k: v["seal_hash"] for k, v in result.slices.items()},
            },
        )

    def _train(self) -> None:
        if self._kept("train"):
            return
        origin = self._resumable()
        if origin is not None:
            self._say(f"resuming the challenger's training after epoch {origin.state.epoch}")
            result = self.project.run_step(
                "train", progress=self.progress, resume=True, budget_minutes=self.budget
            )
            self.resumed.append(f"train (continued from its epoch-{origin.state.epoch} checkpoint)")
        else:
            last = self.project.ledger.latest("train", status=None)
            self.state.mark(self.project, "train_started", {"after_run": last.id if last else 0})
            init_from = (
                V.version_folder(self.root, self.state.champion) if self.state.warm_start else None
            )
            self._say(
                "training the challenger"
                + (f" (warm start from v{self.state.champion})" if init_from else "")
            )
            result = self.project.run_step(
                "train",
                progress=self.progress,
                init_from=init_from,
                epochs_setting="retrain.epochs",
                budget_minutes=self.budget,
            )
        self.state.mark(
            self.project,
            "train",
            {
                "hash": self.project.upstream_hash("train"),
                "run": result.ledger_run_id,
                "val_metric": result.best_metric,
                "metric": result.metric,
                "config_hash": self._train_config(),
            },
        )

    def _resumable(self) -> Any:
        from dlworkflow.train.checkpoint import find_resumable

        started = self.state.stages.get("train_started")
        if not started:
            return None
        try:
            origin = find_resumable(self.project)
        except TrainError:
            return None  # finished, no checkpoint, or other settings: train afresh
        return origin if origin.record.id > int(started["after_run"]) else None

    def _test(self) -> tuple[bool, str]:
        from dlworkflow.deploy.export import current_verdict

        verdict, outputs = current_verdict(self.project)
        if verdict != "UNTESTED" and self._tested_here():
            headline = str(outputs.get("headline") or verdict)
            if "test" not in self.state.stages:
                self.state.mark(self.project, "test", {"verdict": verdict, "headline": headline})
            self.resumed.append("test")
            return verdict == "PASS", headline
        self._say("testing the challenger on the sealed test set (the gate)")
        result = self.project.run_step("test")
        headline = result.verdict.sentence()
        self.state.mark(
            self.project, "test", {"verdict": result.verdict.verdict, "headline": headline}
        )
        return result.verdict.passed, headline

    def _tested_here(self) -> bool:
        """The latest test judged this retrain's challenger, with today's settings (a verdict
        of the same weights against another target does not count)."""
        from dlworkflow.status import stale_reasons
        from dlworkflow.steps import step_info

        record = self.project.ledger.latest("test")
        trained = self.state.stages.get("train") or {}
        if record is None or record.id < int(trained.get("run") or 1 << 62):
            return False
        return not stale_reasons(self.project, step_info("test"), record)

    def _export(self) -> int:
        digest = self.project.upstream_hash("train")
        same = [
            m["version"]
            for m in V.versions(self.root)
            if (m.get("trained") or {}).get("weights_sha256") == digest
        ]
        if same:  # exported before (an interruption, or the same weights): never a copy
            version = int(same[-1])
            self.resumed.append(
                "export"
                if "export" in self.state.stages
                else f"export (v{version} holds the same trained weights)"
            )
        else:
            self._say("exporting the challenger (not promoted yet)")
            version = self.project.run_step("export", promote=False).version
        self.state.mark(self.project, "export", {"version": version})
        return version

    def _compare(self, champion: int, challenger: int) -> dict[str, Any]:
        from dlworkflow.evaluate.compare import compare

        on = self.project.config.retrain.compare_on
        self._say(f"comparing v{champion} and v{challenger} on the sealed rows ({on})")
        return compare(
            self.project,
            champion=V.version_folder(self.root, champion),
            challenger=V.version_folder(self.root, challenger),
            on=on,
        )

    def _staleness(self, champion: int) -> dict[str, Any] | None:
        """The champion on this addition's sealed fresh slice against its test estimate
        (staleness.py); None when the addition put no sample in its fresh slice."""
        from dlworkflow.errors import DlwError
        from dlworkflow.evaluate.staleness import decay
        from dlworkflow.store import read_split_info

        name = f"fresh{self.state.addition}"
        if name not in (read_split_info(self.project).slices or {}):
            return None
        try:
            return decay(
                self.project,
                V.version_folder(self.root, champion),
                name,
                addition=self.state.addition,
            )
        except DlwError as exc:
            self.warnings.append(f"the champion's decay on {name} was not measured: {exc.what}")
            return None

    # ---- helpers ---------------------------------------------------------------------------
    def _kept(self, step: str) -> bool:
        """A stage this retrain finished before, whose output is still the current one."""
        from dlworkflow.status import stale_reasons
        from dlworkflow.steps import step_info

        done = self.state.stages.get(step)
        record = self.project.ledger.latest(step)
        if not done or record is None or record.output_hash != done.get("hash"):
            return False
        if stale_reasons(self.project, step_info(step), record):
            return False
        self.resumed.append(step)
        return True

    def _champion_to_beat(self, challenger: int | None) -> int:
        """The champion now; the one the retrain began with if the challenger already is
        (a retrain killed right after promoting)."""
        current = V.champion(self.root)
        if current is None or current == challenger or V.champion_folder(self.root) is None:
            return self.state.champion
        if current != self.state.champion:
            self.warnings.append(
                f"the champion changed during the retrain (v"
                f"{self.state.champion} -> v{current}): the challenger is "
                f"measured against v{current}"
            )
        return current

    def _train_config(self) -> str:
        from dlworkflow.steps import step_info

        return self.project.config.section_hash(*step_info("train").config_sections)

    def _decision_config(self) -> str:
        """The settings a decision depends on: the target, the gate, the margin."""
        return self.project.config.section_hash("problem", "evaluate", "retrain")

    def _inputs(self, champion: int, challenger: int | None) -> dict[str, str]:
        return {
            "champion": str(champion),
            "challenger": str(challenger or ""),
            "data": self.data,
            "train": self.project.upstream_hash("train") or "",
        }

    def _record(
        self,
        decision: Decision,
        champion: int,
        challenger: int | None,
        verdict: str,
        comparison: dict[str, Any] | None,
    ) -> dict[str, Any]:
        cfg = self.project.config.retrain
        record: dict[str, Any] = {
            "outcome": decision.outcome,
            "reason": decision.reason,
            "champion": champion,
            "challenger": challenger,
            "serving": V.champion(self.root),
            "verdict": verdict,
            "margin": cfg.margin,
            "compare_on": cfg.compare_on,
            "data": self.data,
            "addition": self.state.addition,
            "warm_start": self.state.warm_start,
            "dataset_version": self.project.upstream_hash("ingest"),
            "decision_config": self._decision_config(),
        }
        if comparison is not None:
            record["metric"] = comparison["metric"]
            record["compared"] = comparison["compared"]
            record["slices"] = comparison["slices"]
        return record

    def _result(
        self, decision: Decision, record: dict[str, Any], comparison: dict[str, Any] | None
    ) -> RetrainResult:
        from dlworkflow.store import read_split_info

        info = read_split_info(self.project)
        return RetrainResult(
            data=self.data,
            addition=self.state.addition,
            outcome=decision.outcome,
            reason=decision.reason,
            champion=record["champion"],
            challenger=record["challenger"],
            serving=record["serving"],
            verdict=record["verdict"],
            margin=record["margin"],
            compare_on=record["compare_on"],
            dataset_version=record["dataset_version"] or "",
            warm_start=self.state.warm_start,
            comparison=comparison,
            staleness=record.get("staleness"),
            slices=dict(info.slices),
            seal=info.seal_hash,
            resumed=list(dict.fromkeys(self.resumed)),
            warnings=self.warnings,
            state_file=str(state_path(self.project)),
        )

    def _say(self, message: str) -> None:
        if self.progress:
            from rich.console import Console

            Console(stderr=True).print(f"[bold]retrain[/bold] {message}")


def normalise_source(source: str) -> str:
    """builtin:NAME and URIs as given; a local path absolute (a scheduled run may start in
    another folder)."""
    text = str(source).strip()
    if not text:
        return text
    if text.startswith("builtin:") or ("://" in text and not text.startswith("file://")):
        return text
    return str(Path(text.removeprefix("file://")).expanduser().resolve())


def _seal(project: Workspace) -> str | None:
    from dlworkflow.store import read_split_info

    if not (project.paths.split_dir / "split.json").is_file():
        return None
    return read_split_info(project).seal_hash


def _comparison_rows(
    comparison: dict[str, Any] | None, *, margin: float, on: str
) -> list[tuple[str, Any]]:
    if not comparison:
        return []
    metric, rows = comparison["metric"], []
    for s in comparison["slices"]:
        if s["champion"] is None:
            continue
        lo, hi = s["interval"]
        ci = f", paired CI {lo:+.4f} to {hi:+.4f}" if lo is not None and hi is not None else ""
        rows.append(
            (
                f"  {s['name']} ({s['n']:,})",
                f"champion {s['champion']:.4f}, challenger {s['challenger']:.4f}: "
                f"{s['difference']:+.4f}{ci}",
            )
        )
    c = comparison["compared"]
    head = (
        f"{metric} on {on} ({' + '.join(c['slices'])}, {c['n']:,} rows)",
        f"{c['difference']:+.4f} (challenger - champion; margin {margin:g}"
        + ("" if comparison.get("higher_is_better", True) else ", lower is better")
        + ")"
        if c["difference"] is not None
        else "undefined",
    )
    return [head, *rows]


def _comparison_png(comparison: dict[str, Any]) -> bytes | None:
    """Bars of each model's metric per slice and over the compared rows, with the paired
    interval of the difference written above each pair."""
    groups = [s for s in comparison["slices"] if s["champion"] is not None]
    groups.append({**comparison["compared"], "name": "compared"})
    groups = [g for g in groups if g.get("champion") is not None]
    if not groups:
        return None
    from dlworkflow.plots import new_figure, png_bytes
    from dlworkflow.style import PALETTE

    fig = new_figure(1.6 + 1.3 * len(groups), 3.0)
    ax = fig.subplots()
    xs = range(len(groups))
    ax.bar(
        [x - 0.2 for x in xs],
        [g["champion"] for g in groups],
        0.4,
        label=f"champion v{comparison['champion']['version']}",
        color=PALETTE["reference"],
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [g["challenger"] for g in groups],
        0.4,
        label=f"challenger v{comparison['challenger']['version']}",
        color=PALETTE["good"],
    )
    for x, g in zip(xs, groups):
        top = max(g["champion"], g["challenger"])
        ax.annotate(
            f"{g['difference']:+.3f}",
            (x, top),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_xticks(list(xs), [f"{g['name']}\n(n={g['n']})" for g in groups], fontsize=8)
    low = min(min(g["champion"], g["challenger"]) for g in groups)
    high = max(max(g["champion"], g["challenger"]) for g in groups)
    if low >= 0.0 and high <= 1.0:  # a share (accuracy, F1): the top is 1
        ax.set_ylim(max(0.0, low - 0.1), 1.0 + 0.08)
    else:  # in the target's units (RMSE) or unbounded below (R^2)
        ax.set_ylim(min(0.0, low * 1.1), max(0.0, high) * 1.15 + 1e-9)
    lower = comparison.get("higher_is_better", True) is False
    ax.set(
        ylabel=comparison["metric"] + (" (lower is better)" if lower else ""),
        title="champion vs challenger (sealed rows)",
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)
