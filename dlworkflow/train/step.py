"""Step 6, `dlw train`: train the configured network on the train split, monitor validation,
record the run in the ledger and in MLflow, and save the best weights for `dlw test`."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from dlworkflow import store
from dlworkflow.errors import DlwError, TrainError
from dlworkflow.models import META_FILE, create_model, save_trained
from dlworkflow.models.user import UserNetwork, check_network
from dlworkflow.results import StepResult, png_data_uri
from dlworkflow.store.privacy import check_privacy_gate
from dlworkflow.tasks import task_of
from dlworkflow.train import distributed, strategies, tracking, warm_start
from dlworkflow.train.callbacks import LambdaCallback
from dlworkflow.train.checkpoint import Checkpointer, find_resumable
from dlworkflow.train.progress import count_progress
from dlworkflow.train.tensors import adopt, input_format, load_train_val, loading_label
from dlworkflow.train.trainer import FitResult, LoopConfig, seed_everything

if TYPE_CHECKING:
    from pathlib import Path

    from dlworkflow.models.meta import ModelMeta
    from dlworkflow.train.checkpoint import Resumable
    from dlworkflow.workspace import StepRun, Workspace

BEST_POINTER = "best.json"
DENSE_TUNE_BATCH = 32  # validation images a batch when tuning on the outputs (dense: large)


@dataclass
class TrainResult(StepResult):
    model: str
    parameters: int
    metric: str
    best_metric: float
    best_epoch: int
    epochs_run: int
    val_accuracy: float | None  # classification's (None for other tasks)
    seconds: float
    weights: str
    folder: str
    ledger_run_id: int
    mlflow_run_id: str
    browse: str
    stopped_early: bool = False
    stopped_for_budget: bool = False  # before train.epochs, at the run's time budget
    budget_minutes: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    transfer: str = ""  # "<strategy>: <reason>" (train/strategies.py)
    devices: int = 1  # data-parallel processes
    companion_metric: str = "accuracy"  # what validation tracks beside the metric
    val_companion: float | None = None

    def title(self) -> str:
        return f"train: {self.model}"

    def rows(self) -> list[tuple[str, Any]]:
        stop = " (early stop)" if self.stopped_early else ""
        if self.stopped_for_budget:
            stop = f" (stopped at the {self.budget_minutes:g}-min budget, train.budget_minutes)"
        rows = [
            ("model", f"{self.model} ({self.parameters:,} parameters)"),
            ("transfer", self.transfer),
            ("epochs", f"best {self.best_epoch} of {self.epochs_run} run{stop}"),
            (f"best val {self.metric}", f"{self.best_metric:.4f}"),
            (f"val {self.companion_metric}", _number(self.val_companion)),
            (
                "train time",
                f"{self.seconds:.1f} s"
                + (f" on {self.devices} processes" if self.devices > 1 else ""),
            ),
            ("weights", self.weights),
            ("MLflow run", self.mlflow_run_id),
            ("browse MLflow", self.browse),
        ]
        return [
            r
            for r in rows
            if not (r[0] == f"val {self.companion_metric}" and self.metric == self.companion_metric)
            and not (r[0] == "transfer" and not self.transfer)
        ]

    def figures(self) -> list[tuple[str, Any]]:
        from dlworkflow.plots import curves_png

        png = curves_png(self.history, self.metric)
        uri = png_data_uri(png) if png else None
        return [("training curves", uri)] if uri else []


def _number(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def train(
    project: Workspace,
    *,
    epochs: int | None = None,
    progress: bool = True,
    resume: bool = False,
    devices: int = 1,
    init_from: str | Path | None = None,
    epochs_setting: str | None = None,
    model: Any = None,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
    rdzv_id: str | None = None,
    budget_minutes: float | None = None,
) -> TrainResult:
    """Train `model.name` with `train:` settings; `epochs` overrides train.epochs for this run.
    epochs_setting: read the epochs from this key of the file instead (`dlw retrain` passes
    retrain.epochs); unlike an override, the run is then not stale while that key is unchanged.
    model: a network object (any nn.Module mapping a batch to (N, classes) logits) to train
    instead of model.name; it is copied, never changed (models/live.py). `test` and `export`
    in the same Python process reload it; status shows train stale, since dlworkflow.yaml
    does not describe it (a factory, model.name "module:function", does).

    resume: continue the last train run, interrupted or failed, from its last epoch's
    checkpoint (same settings, same MLflow run); on CPU the result equals an uninterrupted
    run's. devices: data-parallel processes on this node (train/distributed.py);
    `train.batch_size` stays the global batch (of nnodes x devices processes). nnodes,
    node_rank, rdzv_endpoint ("HOST:PORT"), rdzv_id: a multi-node run through torchrun's c10d
    rendezvous: every node calls train with its node_rank (docs/guide/multi-node.md); each
    returns rank 0's result. init_from: warm start from an earlier model's weights (an exported
    version folder models/v<N>/ or a trained run folder; same network and classes, else a
    TrainError says why: train/warm_start.py). A resumed run continues from its checkpoint.
    budget_minutes: this run's time budget instead of train.budget_minutes (`dlw train
    --budget`): the run stops after the epoch that reaches it and records so.
    """
    live_network = model is not None  # the trained network is not in dlworkflow.yaml
    if model is not None:
        from dlworkflow.models import live

        if devices > 1 or nnodes > 1:
            raise TrainError(
                "A network object cannot be sent to --devices or --nnodes processes.",
                fix='write a factory and set model.name: "module:function"',
            )
        project = project.with_overrides({"model.name": live.adopt(model), "model.params": {}})
    shard = distributed.current()
    if (devices > 1 or nnodes > 1) and shard is None:
        nodes = distributed.Nodes(
            nnodes=nnodes,
            node_rank=node_rank,
            rdzv_endpoint=rdzv_endpoint,
            rdzv_id=rdzv_id or default_rdzv_id(project),
        )
        return _launch(
            project,
            devices=devices,
            epochs=epochs,
            budget_minutes=budget_minutes,
            resume=resume,
            progress=progress,
            init_from=init_from,
            nodes=nodes,
        )
    privacy_accepted = check_privacy_gate(project)  # pii/phi: scanned, findings gone or accepted
    cfg = project.config
    split_info = store.read_split_info(project)  # raises StepOrderError before `dlw split`
    metric = cfg.problem.primary_metric or task_of(cfg.task).default_metric
    task_of(cfg.task).metric(metric)  # a metric of this task, else a ConfigError
    origin = _resumable(project, epochs=epochs, shard=shard) if resume else None
    warm = _warm_start(project, split_info, init_from, origin, shard=shard)
    distributed.barrier(shard)  # every rank has read the ledger before rank 0 writes to it
    settings_from = _settings_from(project, epochs_setting, origin)
    if origin is not None:
        epochs = origin.epochs_override
    elif settings_from:
        epochs = cfg.setting(settings_from["train.epochs"])
    loop = LoopConfig.from_train_config(
        cfg.train,
        metric=metric,
        seed=cfg.seed,
        epochs=epochs,
        task=cfg.task,
        budget_minutes=budget_minutes,
    )
    if shard is not None and not shard.is_main:  # compute only: no ledger, MLflow or files
        generator, strategy, model, data = _build(
            project, split_info, shard, progress=False, warm=warm
        )
        strategies.train_model(
            strategy,
            project,
            model,
            data,
            loop,
            generator=generator,
            resume=origin.state if origin else None,
        )
        return None  # type: ignore[return-value]  # rank 0 reports
    started = time.perf_counter()
    overrides = {"train.epochs": epochs} if epochs is not None and not settings_from else None
    with project.step(
        "train",
        inputs=_inputs(project, warm, origin),
        overrides=overrides,
        settings_from=settings_from,
    ) as run:
        spec = spec_record(project)  # dlworkflow.yaml in git, before anything can change it
        if live_network:
            spec["overrides"] = ["model.name", "model.params"]  # a network object
        run.summary["spec"] = spec
        generator, strategy, model, data = _build(
            project, split_info, shard, progress=progress, warm=warm, timing=(loop, origin)
        )
        folder = origin.folder if origin else project.paths.train_dir / f"run-{run.run_id}"
        try:
            result, weights, digest, mlflow_run_id = _fit_tracked(
                project,
                run,
                split_info=split_info,
                loop=loop,
                model=model,
                data=data,
                strategy=strategy,
                generator=generator,
                folder=folder,
                shard=shard,
                warm=warm,
                origin=origin,
                epochs=epochs,
                progress=progress,
                spec=spec,
            )
        except TrainError as exc:  # a NaN/inf: the failed run's record says where and what
            if "numerics" in exc.context:
                run.summary["numerics"] = exc.context["numerics"]
                run.summary["headline"] = _stopped_headline(exc.context["numerics"])
            raise
        seconds = time.perf_counter() - started
        write_pointer(
            project, folder, run_id=run.run_id, mlflow_run_id=mlflow_run_id, digest=digest
        )
        record(
            run,
            result,
            model=cfg.model.name,
            metric=metric,
            weights=weights,
            digest=digest,
            mlflow_run_id=mlflow_run_id,
            seconds=seconds,
            epochs=epochs if overrides else None,
            privacy_accepted=privacy_accepted,
        )
        _annotate(run, strategy=strategy, shard=shard, warm=warm, origin=origin)
        run.summary["numerics"] = result.numerics
        run.summary["spec"] = spec
        if settings_from:
            run.summary["epochs_from"] = f"{settings_from['train.epochs']}: {epochs}"
    best = result.best
    companion = task_of(cfg.task).companion_metric
    out = TrainResult(
        model=cfg.model.name,
        parameters=model.parameter_count(),
        metric=metric,
        best_metric=result.best_metric,
        best_epoch=result.best_epoch,
        epochs_run=result.epochs_run,
        val_accuracy=best.get("val_accuracy"),
        seconds=seconds,
        companion_metric=companion,
        val_companion=best.get(f"val_{companion}"),
        weights=str(weights),
        folder=str(folder),
        ledger_run_id=run.run_id,
        mlflow_run_id=mlflow_run_id,
        browse=tracking.browse_hint(project),
        stopped_early=result.stopped_early,
        stopped_for_budget=result.stopped_for_budget,
        budget_minutes=result.budget_minutes,
        history=result.history,
        transfer=strategy.describe(),
        devices=_world(shard),
    )
    return out  # train_worker.py shares a rank 0's result with every node


def _resumable(
    project: Workspace, *, epochs: int | None, shard: distributed.Shard | None
) -> Resumable:
    """find_resumable; data-parallel, every rank reads the checkpoint itself and the ranks
    check that they all read the same one (a node that does not see the project's
    filesystem, or a stale copy of it, fails every rank with one clear error)."""
    if shard is None:
        return find_resumable(project, epochs=epochs)
    origin, failure = None, None
    try:
        origin = find_resumable(project, epochs=epochs)
    except TrainError as exc:
        failure = exc
    distributed.check_same_resume(origin.state if origin else None, shard)
    if failure is not None:
        raise failure
    assert origin is not None
    return origin


def default_rdzv_id(project: Workspace) -> str:
    """The rendezvous's default name, the same on every node of one run: the project's name
    and its dataset version (so two projects, or two data versions, never meet)."""
    import re

    try:
        version = store.read_split_info(project).dataset_version or ""
    except DlwError:  # no split yet: _launch says so with the step-order error
        version = ""
    raw = f"dlw-{project.config.name}-{version[:12]}".rstrip("-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)[:100]


def _fit_tracked(
    project: Workspace,
    run: Any,
    *,
    split_info: Any,
    loop: LoopConfig,
    model: Any,
    data: Any,
    strategy: Any,
    generator: Any,
    folder: Path,
    shard: Any,
    warm: Any,
    origin: Any,
    epochs: int | None,
    progress: bool,
    spec: dict[str, Any] | None = None,
) -> tuple[Any, Path, str, str]:
    """Train inside an MLflow run with a checkpoint every epoch; save the best weights.
    Returns (fit result, weights file, its sha256, the MLflow run id)."""
    cfg = project.config
    metric = loop.metric
    tags = {tracking.LEDGER_TAG: str(run.run_id), "dlw.step": "train"}
    with tracking.tracked_run(
        project,
        run_name=f"{cfg.model.name}-run{run.run_id}",
        tags=tags,
        resume_run_id=origin.mlflow_run_id if origin else None,
    ) as tracker:
        tracker.log_params(run_params(project, split_info, loop, model, data))
        # a resumed run may run on another number of processes (the loop state does not
        # depend on it) and MLflow refuses to change a param: the ledger records each part's
        devices = {"train.devices": _world(shard)} if origin is None else {}
        tracker.log_params({**strategy.params(), **devices, **_warm_params(warm)})
        if origin is not None:  # epochs the interrupted run checkpointed but never logged
            tracker.log_history(origin.state.history)
        checkpoint = Checkpointer(
            folder / "checkpoint",
            {
                "ledger_run_id": run.run_id,
                "mlflow_run_id": tracker.run_id,
                "epochs_override": epochs,
                "loop": dataclasses.asdict(loop),
                "transfer": strategy.summary(),  # a resumed run keeps auto's choice
                **_warm_record(warm),
            },
        )
        result = strategies.train_model(
            strategy,
            project,
            model,
            data,
            loop,
            generator=generator,
            callbacks=[_recording(checkpoint.save, run), tracker],
            progress=progress,
            resume=origin.state if origin else None,
        )
        meta = model_meta(project, split_info, result, data, metric, run, tracker.run_id)
        meta["target"] = tuned_target(model, data)
        meta["transfer"] = strategy.summary()
        meta["numerics"] = result.numerics
        if spec is not None:
            meta["spec"] = spec
        if warm is not None:
            meta["init_from"] = warm.record()
        weights, digest = save_trained(folder, model, meta)
        tracker.log_metrics(
            {f"best_val_{metric}": result.best_metric, "best_epoch": result.best_epoch},
            step=result.best_epoch,
        )
        tracker.log_artifacts([weights, folder / META_FILE, project.paths.config])
    return result, weights, digest, tracker.run_id


def _stopped_headline(numerics: dict[str, Any]) -> str:
    where = f"epoch {numerics.get('epoch')}"
    if numerics.get("step") is not None:
        where += f", step {numerics['step']}"
    elif numerics.get("batch") is not None:
        where += f", batch {numerics['batch']}"
    return f"stopped: non-finite {numerics.get('quantity')} ({numerics.get('value')}) at {where}"


def spec_record(project: Workspace) -> dict[str, Any]:
    """dlworkflow.yaml in git when this run starts (dlworkflow/vcs.py, one git call): file,
    state (committed, modified, untracked, ..., "not a git repository", "git not installed"),
    commit, clean. When it is modified: `changed`, the dotted keys whose values differ from
    the committed file's (one more git call), and `model_spec_changed`, those among the
    sections the train step's config hash covers (model, augment, train, seed) or the task:
    none means the spec that defined the model is the committed one (e.g. `dlw retrain`
    added data.additions)."""
    from dlworkflow import vcs
    from dlworkflow.config import CONFIG_FILE
    from dlworkflow.steps import step_info

    record = vcs.file_state(project.root, CONFIG_FILE)
    source = _factory_source(project)
    if source is not None:  # model.name "module:function": the network's code is spec too
        record["source"] = vcs.file_state(project.root, source)
    if record["state"] != vcs.MODIFIED:
        return record
    sections = {*step_info("train").config_sections, "task"}
    changed = _changed_keys(project, vcs.committed_text(project.root, CONFIG_FILE))
    record["changed"] = changed
    record["model_spec_changed"] = [k for k in changed if k.split(".")[0] in sections]
    return record


def _factory_source(project: Workspace) -> str | None:
    """The file (relative to the project) defining a factory model.name, when it lies in
    the project folder."""
    from dlworkflow.model_refs import _source_file, target_of

    target = target_of(project.config.model.name)
    path = _source_file(target.split(":", 1)[0]) if target else None
    if path is None:
        return None
    try:
        return path.resolve().relative_to(project.root).as_posix()
    except ValueError:  # an installed package's module: versioned with that package
        return None


def _changed_keys(project: Workspace, committed: str | None) -> list[str]:
    """Dotted keys whose effective values differ between the committed dlworkflow.yaml and
    the file now (defaults filled in on both sides); ["(committed file unreadable)"] when
    the committed text is missing or does not validate."""
    from dlworkflow.config import validate_config
    from dlworkflow.workspace import round_trip_yaml

    if committed is None:
        return ["(committed file unreadable)"]
    try:
        before = validate_config(round_trip_yaml().load(committed)).model_dump(mode="json")
    except Exception as exc:  # a ConfigError, or ruamel's parser errors (no common base)
        return [f"(committed file unreadable: {type(exc).__name__})"]
    now = project.config.model_dump(mode="json")
    flat_before, flat_now = _flatten(before), _flatten(now)
    changed = {
        k for k in flat_before.keys() | flat_now.keys() if flat_before.get(k) != flat_now.get(k)
    }
    # an empty mapping on one side ("model.params": {}) and its keys on the other: the keys
    return sorted(k for k in changed if not any(c.startswith(k + ".") for c in changed))


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): node}


def _annotate(run: Any, *, strategy: Any, shard: Any, warm: Any, origin: Any) -> None:
    """The ledger summary's transfer strategy, devices, warm start and resume facts."""
    run.summary["transfer"] = strategy.summary()
    run.summary["devices"] = _world(shard)
    if warm is not None or (origin is not None and origin.meta.get("init_from")):
        run.summary["warm_start"] = warm.record() if warm else origin.meta["init_from"]
    if origin is not None:
        run.summary["resumed_from"] = origin.record.id
        run.summary["resumed_at_epoch"] = origin.state.epoch


def _build(
    project: Workspace,
    split_info: store.SplitInfo,
    shard: distributed.Shard | None,
    *,
    progress: bool,
    warm: warm_start.WarmStart | None = None,
    timing: tuple[LoopConfig, Resumable | None] | None = None,
) -> tuple[Any, strategies.Strategy, Any, Any]:
    """Seeded generator, transfer strategy, the model (warm-started when `warm`) and its
    train/val data. timing (the run's loop, the run it resumes or None): the strategy's
    estimate, and auto's choice by the budget (train/estimate.py); a resumed run keeps the
    choice of the run it continues."""
    cfg = project.config
    threads = cfg.train.threads
    if shard is not None and not torch.cuda.is_available():  # this node's ranks share its cores
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", shard.world))
        threads = max(1, (threads or os.cpu_count() or 1) // local_world)
    generator = seed_everything(cfg.seed, threads=threads)
    strategy = strategies.choose(project, cfg.model.name)  # model.transfer, with reason
    model = create_model(
        cfg.model.name,
        num_classes=len(split_info.classes),
        task=cfg.task,
        **input_format(project),
        **strategy.model_params(cfg.model.name, cfg.model.params),
    )
    if isinstance(model, UserNetwork):  # forward pass and ONNX dry run, before any data
        check_network(model)
    if warm is not None:  # before the data loads: a misfit fails in a second
        warm.load_into(model)
        strategy = dataclasses.replace(
            strategy, reason=f"{strategy.reason}; warm start from {warm.describe()}"
        )
    # the model's preprocessing says how to load: image format and a pretrained backbone's
    # fixed normalisation, text max_len; the data's statistics go back into it
    with count_progress(loading_label(cfg.task), enabled=progress) as report:
        data = load_train_val(
            project, split_info.classes, report=report, preprocessing=model.preprocessing
        )
    adopt(model, data)  # preprocessing; series: the train split's channel statistics
    if timing is not None:
        strategy = _timed(strategy, project, model, data, *timing, progress=progress)
    return generator, strategy, model, data


def _timed(
    strategy: strategies.Strategy,
    project: Workspace,
    model: Any,
    data: Any,
    loop: LoopConfig,
    origin: Resumable | None,
    *,
    progress: bool,
) -> strategies.Strategy:
    """estimate.settle's strategy; resuming, the interrupted run's (from its checkpoint)."""
    from dlworkflow.train import estimate

    kept = origin.meta.get("transfer") if origin is not None else None
    if kept and kept.get("strategy") in strategies.STRATEGIES:
        return dataclasses.replace(
            strategy,
            name=kept["strategy"],
            reason=kept.get("reason", ""),  # as logged: a resumed run logs to the same MLflow run
            estimate=kept.get("estimate"),
        )
    return estimate.settle(strategy, project, model, data, loop, progress=progress)


def _warm_start(
    project: Workspace,
    split_info: store.SplitInfo,
    init_from: str | Path | None,
    origin: Resumable | None,
    *,
    shard: distributed.Shard | None = None,
) -> warm_start.WarmStart | None:
    """The checked warm start, or None (none asked, or a resumed run: its checkpoint holds
    the weights). A data-parallel rank gets its folder from the launcher."""
    if init_from is None and shard is not None:
        init_from = distributed.warm_start_from_env()
    if init_from is None or origin is not None:
        return None
    return warm_start.resolve(
        init_from, model=project.config.model.name, classes=list(split_info.classes)
    )


def _warm_record(warm: warm_start.WarmStart | None) -> dict[str, Any]:
    """{"init_from": ...} for model.json and the checkpoint meta; {} without a warm start."""
    return {"init_from": warm.record()} if warm is not None else {}


def _settings_from(
    project: Workspace, epochs_setting: str | None, origin: Resumable | None
) -> dict[str, str] | None:
    """{"train.epochs": <key>} when this run reads its epochs from another key that is set
    (a resumed run keeps what the run it continues read)."""
    from dlworkflow.config import settings_sources

    if origin is not None:
        return settings_sources(origin.record.inputs) or None
    if epochs_setting and project.config.setting(epochs_setting) is not None:
        return {"train.epochs": epochs_setting}
    return None


def _warm_params(warm: warm_start.WarmStart | None) -> dict[str, Any]:
    if warm is None:
        return {}
    return {"train.init_from": str(warm.weights)[:500], "train.init_from_sha256": warm.sha256}


def _inputs(
    project: Workspace, warm: warm_start.WarmStart | None, origin: Resumable | None
) -> dict[str, Any]:
    """The train step's ledger inputs: the split, and the warm start's weights when one
    is used (a resumed run keeps its original inputs)."""
    from dlworkflow.model_refs import MODEL_SOURCE, source_hash

    inputs = {"split": project.upstream_hash("split")}
    source = source_hash(project.config.model.name)  # a user's network: editing it -> stale
    if source is not None:
        inputs[MODEL_SOURCE] = source
    if warm is not None:
        inputs["init_from"] = warm.sha256
    elif origin is not None and origin.record.inputs.get("init_from"):
        inputs["init_from"] = origin.record.inputs["init_from"]
    return inputs


def _world(shard: distributed.Shard | None) -> int:
    return shard.world if shard is not None else 1


def _launch(
    project: Workspace,
    *,
    devices: int,
    epochs: int | None,
    resume: bool,
    progress: bool,
    init_from: str | Path | None = None,
    nodes: distributed.Nodes | None = None,
    budget_minutes: float | None = None,
) -> TrainResult:
    """Check what one process would check first (clear errors, no stack of N tracebacks),
    then run the ranks; rank 0's TrainResult (on every node of a multi-node run)."""
    nodes = nodes or distributed.Nodes()
    distributed.check_nodes(nodes)
    check_privacy_gate(project)
    store.read_split_info(project)
    batch = project.config.train.batch_size
    world = devices * nodes.nnodes
    if batch % world:
        between = f"--devices {devices}" + (f" x --nnodes {nodes.nnodes}" if nodes.multi else "")
        raise TrainError(
            f"train.batch_size ({batch}) must divide evenly between {between}: it "
            "is the global batch, cut into one equal slice per process.",
            expected=f"a multiple of {world}",
            received=str(batch),
            fix=f"train.batch_size: {max(world, batch - batch % world)} in dlworkflow.yaml",
        )
    origin = find_resumable(project, epochs=epochs) if resume else None
    warm = _warm_start(project, store.read_split_info(project), init_from, origin)
    data = distributed.launch(
        project.root,
        devices=devices,
        epochs=epochs,
        budget_minutes=budget_minutes,
        resume=resume,
        progress=progress,
        init_from=warm.folder if warm else None,
        nodes=nodes,
    )
    return TrainResult(**data)


def _recording(save: Any, run: StepRun) -> Any:
    """A callback: checkpoint, then note the epoch in the ledger summary: a failed run's
    status then offers `dlw train --resume`."""

    def on_checkpoint(state: Any) -> None:
        save(state.checkpoint)
        run.summary["checkpoint_epoch"] = state.epoch

    return LambdaCallback(on_checkpoint=on_checkpoint)


def run_params(
    project: Workspace, split_info: store.SplitInfo, loop: LoopConfig, model: Any, data: Any
) -> dict[str, Any]:
    """Flat MLflow params: model spec, effective train settings, data identity."""
    cfg = project.config
    params: dict[str, Any] = {
        "model.name": cfg.model.name,
        "model.parameters": model.parameter_count(),
    }
    params.update({f"model.params.{k}": v for k, v in cfg.model.params.items()})
    params.update({f"train.{k}": v for k, v in cfg.train.model_dump().items()})
    params.update(
        {
            "train.epochs": loop.epochs,
            "train.metric": loop.metric,
            "seed": cfg.seed,
            "data.dataset_version": split_info.dataset_version,
            "data.split_hash": split_info.hash,
            "data.classes": len(data.classes),
            **data.describe(),
            "data.n_train": len(data.y_train),
            "data.n_val": len(data.y_val),
        }
    )
    return params


def tuned_target(model: Any, data: Any) -> dict[str, Any]:
    """The target facts model.json keeps: the task's, plus what it tunes on the validation
    outputs of the trained model (multi-label: each label's threshold)."""
    from dlworkflow.train.trainer import eval_batch_size, predict_logits

    task = task_of(data.task)
    if not task.tunes_on_validation:
        return dict(data.target)
    batch = eval_batch_size(data.task, DENSE_TUNE_BATCH)
    logits = predict_logits(model, data.val, batch_size=batch).cpu().numpy()
    return task.fit_on_validation(
        data.y_val.numpy(), task.outputs(logits, data.target), data.target
    )


def model_meta(
    project: Workspace,
    split_info: store.SplitInfo,
    result: FitResult,
    data: Any,
    metric: str,
    run: StepRun,
    mlflow_run_id: str,
) -> ModelMeta:
    """Everything `dlw test` needs to predict, plus where the model came from."""
    return {
        "classes": data.classes,
        **data.meta(),
        "metric": metric,
        "val_metric": result.best_metric,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "history": result.history,
        "dataset_version": split_info.dataset_version,
        "split_hash": split_info.hash,
        "seed": project.config.seed,
        "ledger_run_id": run.run_id,
        "mlflow_run_id": mlflow_run_id,
    }


def write_pointer(
    project: Workspace, folder: Path, *, run_id: int, mlflow_run_id: str, digest: str
) -> None:
    """`.dlw/train/best.json`: which trained model `dlw test` evaluates."""
    store.write_trained_pointer(
        project,
        {
            "folder": str(folder),
            "folder_in_project": folder.relative_to(project.root).as_posix(),
            "run_id": run_id,
            "mlflow_run_id": mlflow_run_id,
            "weights_sha256": digest,
        },
    )


def record(
    run: StepRun,
    result: FitResult,
    *,
    model: str,
    metric: str,
    weights: Path,
    digest: str,
    mlflow_run_id: str,
    seconds: float,
    epochs: int | None,
    privacy_accepted: str | None = None,
) -> None:
    run.outputs = {"hash": digest, "weights": str(weights)}
    run.summary = {
        "headline": f"val {metric} {result.best_metric:.4f} "
        f"(epoch {result.best_epoch}/{result.epochs_run})",
        "model": model,
        "val_metric": result.best_metric,
        "metric": metric,
        "val_accuracy": result.best.get("val_accuracy"),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "stopped_for_budget": result.stopped_for_budget,
        "budget_minutes": result.budget_minutes,
        "mlflow_run_id": mlflow_run_id,
        "seconds": round(seconds, 2),
    }
    if epochs is not None:
        run.summary["epochs_override"] = epochs
    if privacy_accepted:
        run.summary["privacy_accepted"] = privacy_accepted
