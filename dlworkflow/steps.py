"""The nine workflow steps: their commands, the config they depend on and their upstream steps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepInfo:
    number: int
    key: str
    title: str
    command: str
    ledger_step: str | None  # None: not available in this version
    config_sections: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()  # ledger steps whose output this step consumes


STEPS: tuple[StepInfo, ...] = (
    StepInfo(1, "define", "define the problem and success", "dlw define", "define", ("problem",)),
    StepInfo(2, "ingest", "get data", "dlw ingest SOURCE", "ingest", ("data",)),
    StepInfo(3, "explore", "explore the data", "dlw explore", "explore", ("explore",), ("ingest",)),
    StepInfo(
        4,
        "split",
        "prepare: split and seal the test set",
        "dlw split",
        "split",
        ("split", "seed"),
        ("ingest",),
    ),
    StepInfo(5, "model", "define the network", "dlw models / model: in dlworkflow.yaml", None),
    StepInfo(
        6,
        "train",
        "train and tune",
        "dlw train",
        "train",
        ("model", "augment", "train", "seed"),
        ("split",),
    ),
    StepInfo(
        7,
        "test",
        "test once against the target",
        "dlw test",
        "test",
        ("problem", "evaluate"),
        ("train",),
    ),
    StepInfo(
        8,
        "report",
        "document and present",
        "dlw report",
        "report",
        ("problem", "evaluate", "audit"),
        ("test",),
    ),
    StepInfo(
        9,
        "monitor",
        "maintain: monitor and retrain",
        "dlw monitor   (on the log of `dlw serve`, or --inputs DIR)",
        "monitor",
        ("monitor",),
    ),
)

# Recorded in the ledger but not a step of their own in `dlw status`: diagnostics that may
# run any number of times (evaluation on validation is part of step 7).
DIAGNOSTICS: tuple[StepInfo, ...] = (
    StepInfo(
        7,
        "evaluate",
        "evaluate on validation",
        "dlw evaluate",
        "evaluate",
        ("problem", "evaluate"),
        ("train",),
    ),
    StepInfo(
        7,
        "export",
        "export the model (ONNX, parity checked)",
        "dlw export",
        "export",
        ("problem", "evaluate"),
        ("train", "test"),
    ),
    StepInfo(
        7,
        "explain",
        "explain predictions (saliency, attributions) on validation",
        "dlw explain",
        "explain",
        (),
        ("train",),
    ),
    StepInfo(
        6,
        "tune",
        "tune hyperparameters on validation",
        "dlw tune",
        "tune",
        ("model", "augment", "train", "tune", "seed"),
        ("split",),
    ),
    StepInfo(
        9,
        "retrain",
        "retrain: champion against challenger",
        "dlw retrain --data SOURCE",
        "retrain",
        ("problem", "retrain"),
        (),
    ),
    StepInfo(
        9,
        "promote",
        "promote: make an exported version the champion",
        "dlw promote VERSION",
        "promote",
    ),
    StepInfo(
        9,
        "rollback",
        "rollback: the previous champion again",
        "dlw rollback [--to N]",
        "rollback",
    ),
    StepInfo(
        2,
        "label_review",
        "label review: keep, relabel or exclude a label-issue candidate",
        "dlw review-label SAMPLE_ID keep|relabel|exclude",
        "label_review",
    ),
)

#: The steps that write the project's data, models or champion: each holds the project's
#: write lock (Workspace.write_lock), so only one runs at a time. The others (define,
#: explore, evaluate, report, audit) write only their own reports and ledger rows, and may
#: run beside a writer, as readers (status, serve, predict, versions) do.
WRITERS: frozenset[str] = frozenset(
    {
        "ingest",
        "split",
        "train",
        "tune",
        "test",
        "export",
        "promote",
        "rollback",
        "retrain",
        "monitor",
    }
)

RUNNABLE: tuple[str, ...] = tuple(s.ledger_step for s in STEPS if s.ledger_step)


def step_info(ledger_step: str) -> StepInfo:
    for info in STEPS + DIAGNOSTICS:
        if info.ledger_step == ledger_step:
            return info
    raise KeyError(ledger_step)


@dataclass(frozen=True)
class StepRunner:
    """The function that runs a ledger step: `module:function`, called as
    function(workspace, **options). `progress`: it takes progress=True|False."""

    target: str
    progress: bool = False


#: One table for every caller that runs a step: the Project facade (the CLI and the Python
#: API), `dlw run` (workflow.run_stale) and `dlw retrain`. Import strings, so that this core
#: module imports no step package; Workspace.run_step resolves them.
RUNNERS: dict[str, StepRunner] = {
    "define": StepRunner("dlworkflow.problem:define"),
    "ingest": StepRunner("dlworkflow.data:ingest", progress=True),
    "explore": StepRunner("dlworkflow.explore:explore", progress=True),
    "split": StepRunner("dlworkflow.prepare:split"),
    "train": StepRunner("dlworkflow.train:train", progress=True),
    "tune": StepRunner("dlworkflow.train.tune:tune", progress=True),
    "evaluate": StepRunner("dlworkflow.evaluate:evaluate"),
    "explain": StepRunner("dlworkflow.evaluate.explain_step:explain"),
    "test": StepRunner("dlworkflow.evaluate:test"),
    "export": StepRunner("dlworkflow.deploy.export:export"),
    "report": StepRunner("dlworkflow.report:report"),
    "audit": StepRunner("dlworkflow.report.audit:audit"),
    "monitor": StepRunner("dlworkflow.monitor.step:monitor"),
    "retrain": StepRunner("dlworkflow.monitor.retrain:retrain", progress=True),
    "promote": StepRunner("dlworkflow.deploy.export.versions_cmd:promote"),
    "rollback": StepRunner("dlworkflow.deploy.export.versions_cmd:rollback"),
    "label_review": StepRunner("dlworkflow.data.label_review:review_label"),
}
