"""`dlw`: one command per workflow step, a thin layer over the Python API (dlworkflow.Project).

Heavy modules are imported inside the commands, so `dlw --help` stays fast.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="dlw",
    help="dlworkflow: a deep learning project from the problem definition to a tested model.\n\n"
    "Steps: init/define (1), ingest (2), explore (3), split (4), models/lr-find/augment-preview/"
    "train (5-6), evaluate/test/export (7), report/audit (8), monitor/retrain (9); status "
    "shows where the project stands, run does every stale step, demo does it all on real MNIST.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(
    help="Inspect dlworkflow.yaml: its schema and effective values.", no_args_is_help=True
)
app.add_typer(config_app, name="config")

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project folder.", show_default="current folder")
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout instead of tables (shapes: "
        "docs/reference/json-output.md); progress and logs go to stderr.",
    ),
]
HERE = Path(".")


def _task_help() -> str:
    from dlworkflow.tasks import task_names

    return "The project's task: " + ", ".join(task_names()) + "."


def _demo_task_help() -> str:
    from dlworkflow.demo_plans import demo_plan, demo_tasks

    shown = [f"{t} ({demo_plan(t).name})" for t in demo_tasks()]
    return "The demo's task: " + ", ".join(shown) + "."


def _lazy_help(**helps: Any) -> type:
    """A command class whose named options' help is written when the help is shown (from
    the task and demo registries), so `dlw --help` imports neither."""
    from typer.core import TyperCommand

    class LazyHelp(TyperCommand):
        def format_help(self, ctx: Any, formatter: Any) -> None:
            for param in self.params:
                make = helps.get(str(param.name))
                if make is not None:
                    param.help = make()  # type: ignore[attr-defined]
            super().format_help(ctx, formatter)

    return LazyHelp


def _print_version(value: bool) -> None:
    if value:
        from dlworkflow import __version__

        typer.echo(f"dlw {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    pass


def _console() -> Any:
    from rich.console import Console

    return Console()


def _show(obj: Any) -> None:
    _console().print(obj)


def _load(project: Path) -> Any:
    from dlworkflow.project import Project

    return Project.load(project)


def _table(
    title: str,
    columns: tuple[str, ...],
    rows: list[tuple[str, ...]],
    *,
    whole: tuple[int, ...] = (0,),
) -> None:
    """A rich table; the columns listed in `whole` (names, numbers) are never cut."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, no_wrap=i in whole)
    for row in rows:
        table.add_row(*row)
    _show(table)


def _run(action: Any) -> Any:
    """Call the API; a DlwError becomes its message and exit code, without a traceback."""
    try:
        return action()
    except Exception as exc:
        _fail(exc)


def _result(action: Any, as_json: bool) -> Any:
    """Call the API and print its result: a table, or with --json one JSON document on stdout
    (everything else the call prints goes to stderr). A DlwError exits with its code; with
    --json it is also printed on stdout as {"error": {...}} (DlwError.to_json)."""
    if not as_json:
        result = _run(action)
        _show(result)
        return result
    from dlworkflow.errors import DlwError
    from dlworkflow.jsonout import emit, stdout_to_stderr

    try:
        with stdout_to_stderr():
            result = action()
    except DlwError as exc:
        emit({"error": exc})
        typer.echo(f"error: {exc.render()}", err=True)
        raise typer.Exit(exc.exit_code) from None
    emit(result)
    return result


def _fail(exc: Exception) -> None:
    from dlworkflow.errors import DlwError

    if isinstance(exc, DlwError):
        _console().print(f"[bold red]error:[/] {exc.render()}", highlight=False)
        raise typer.Exit(exc.exit_code)
    raise exc


@app.command(cls=_lazy_help(task=_task_help))
def init(
    directory: Annotated[Path, typer.Argument(help="Folder of the new project.")] = HERE,
    task: Annotated[
        str, typer.Option(help="The project's task (the list: `dlw init --help`).")
    ] = "image-classification",
    name: Annotated[str | None, typer.Option(help="Project name (default: folder).")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Initial model (see `dlw models`); default: the task's usual one."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing dlworkflow.yaml.")] = False,
) -> None:
    """Step 1: create a project with a commented dlworkflow.yaml that asks what success is."""
    from dlworkflow.project import Project
    from dlworkflow.tasks import task_of

    try:
        project = Project.init(directory, task=task, name=name, model=model, force=force)
    except Exception as exc:
        _fail(exc)
    _console().print(
        f"Created {project.paths.config}\nNext: write the success criterion, e.g. "
        f'`{task_of(project.config.task).define_hint()} --objective "..."`',
        highlight=False,
    )


@app.command()
def define(
    project: ProjectOpt = HERE,
    objective: Annotated[str | None, typer.Option(help="The objective in plain words.")] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="Primary metric: accuracy, balanced_accuracy, macro_f1, auroc."),
    ] = None,
    target: Annotated[float | None, typer.Option(help="Target value (0-1).")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="Max CPU latency, ms.")] = None,
    max_model_size_mb: Annotated[float | None, typer.Option(help="Max model size, MB.")] = None,
    constituency: Annotated[
        list[str] | None,
        typer.Option(help="Who is affected / decides (repeatable; replaces the list)."),
    ] = None,
    assumption: Annotated[
        list[str] | None, typer.Option(help="An assumption (repeatable; replaces the list).")
    ] = None,
    sensitivity: Annotated[str | None, typer.Option(help="none, pii or phi.")] = None,
) -> None:
    """Step 1: set and validate the problem spec and success criterion."""
    try:
        result = _load(project).define(
            objective=objective,
            metric=metric,
            target=target,
            max_latency_ms=max_latency_ms,
            max_model_size_mb=max_model_size_mb,
            constituencies=constituency,
            assumptions=assumption,
            data_sensitivity=sensitivity,
        )
    except Exception as exc:
        _fail(exc)
    _show(result)


@config_app.command("schema")
def config_schema(
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Write it to the project's dlworkflow.schema.json instead (the file "
            "dlworkflow.yaml's first line names for editors) and add that line when missing.",
        ),
    ] = False,
    project: ProjectOpt = HERE,
) -> None:
    """Print the JSON Schema of dlworkflow.yaml."""
    from dlworkflow.config_schema import schema_text

    if not write:
        typer.echo(schema_text(), nl=False)
        return
    from dlworkflow.config_schema import write_schema_and_line

    path, changed = _run(lambda: write_schema_and_line(_load(project)))
    _console().print(f"{'Wrote' if changed else 'Up to date:'} {path}", highlight=False)


@config_app.command("show")
def config_show(project: ProjectOpt = HERE) -> None:
    """Print the effective config: the file's values plus every default; when tune.space is
    empty, the default search space `dlw tune` would use follows as YAML comments."""
    import yaml

    try:
        loaded = _load(project)
        config = loaded.config
    except Exception as exc:
        _fail(exc)
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
    if not config.tune.space:
        from dlworkflow.train.tune.space import DEFAULT_FIX, resolve

        searched = _run(lambda: resolve(loaded))
        typer.echo(f"# tune.space is empty: `dlw tune` searches the {searched.describe()}")
        typer.echo(f"# ({DEFAULT_FIX}); the default space:")
        for line in searched.lines():
            typer.echo(f"#   {line}")


@app.command()
def status(project: ProjectOpt = HERE, as_json: JsonOpt = False) -> None:
    """Where the project stands on each of the nine steps, and the next command."""
    _result(lambda: _load(project).status(), as_json)


@app.command()
def datasets() -> None:
    """List the built-in real datasets (`dlw ingest builtin:NAME`)."""
    from dlworkflow.datasets import list_builtins

    _table(
        "built-in datasets",
        ("name", "task", "samples", "size", "licence", "source"),
        [
            (
                f"builtin:{d.name}",
                d.task,
                f"{d.n_samples:,}",
                d.size,
                d.licence,
                f"{d.source}; package: {d.package}",
            )
            for d in list_builtins()
        ],
    )


@app.command()
def ingest(
    source: Annotated[
        str | None,
        typer.Argument(
            help="builtin:NAME, a folder of class sub-folders, or a CSV with path,label."
        ),
    ] = None,
    project: ProjectOpt = HERE,
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify",
            help="Scan for PHI/PII and read scrubbed copies written into the "
            "project (originals untouched); what was removed where is logged.",
        ),
    ] = False,
    accept_findings: Annotated[
        str | None,
        typer.Option(
            "--accept-findings",
            metavar="REASON",
            help="Train despite remaining PHI/PII findings: the reason is recorded with this "
            "dataset version (privacy.accept_findings_reason/_version); new data needs a new "
            "decision.",
        ),
    ] = None,
    accept_schema: Annotated[
        bool,
        typer.Option(
            "--accept-schema",
            help="The data changed deliberately (a new class, a new kind of image, new "
            "values): infer the feature schema (.dlw/data/schema.json) anew from this data "
            "instead of quarantining what breaks it.",
        ),
    ] = False,
    label_column: Annotated[
        str | None, typer.Option(help="The table's label column (data.label_column).")
    ] = None,
    path_column: Annotated[
        str | None, typer.Option(help="The column of file paths (data.path_column).")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="The column of texts (data.text_column).")
    ] = None,
    feature_columns: Annotated[
        str | None,
        typer.Option(
            metavar="A,B,...", help="The feature columns, comma-separated (data.feature_columns)."
        ),
    ] = None,
    group_column: Annotated[
        str | None,
        typer.Option(help="Samples sharing a value stay in one split (data.group_column)."),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(help="The column of sample ids (data.id_column).")
    ] = None,
) -> None:
    """Step 2: read the data into a manifest; unusable samples are quarantined with a reason.

    The column options are written into dlworkflow.yaml first (the change is shown)."""
    columns = {
        "label_column": label_column,
        "path_column": path_column,
        "text_column": text_column,
        "feature_columns": _names(feature_columns),
        "group_column": group_column,
        "id_column": id_column,
    }

    def run() -> Any:
        loaded = _load(project)
        diff = loaded.set_columns(**columns)
        if diff:
            _console().print(diff, highlight=False, markup=False)
        return loaded.ingest(
            source,
            deidentify=deidentify,
            accept_findings=accept_findings,
            accept_schema=accept_schema,
        )

    _show(_run(run))


def _names(text: str | None) -> list[str] | None:
    """ "a, b,c" -> ["a", "b", "c"] (None stays None)."""
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


@app.command()
def explore(
    project: ProjectOpt = HERE,
    include_test: Annotated[
        bool,
        typer.Option(
            "--include-test",
            help="After a split, explore the sealed test set too (read through the seal, "
            "logged in the ledger with its purpose); without it: train and validation only.",
        ),
    ] = False,
) -> None:
    """Step 3: explore the data; writes reports/eda.html (trust summary first)."""
    _show(_run(lambda: _load(project).explore(include_test=include_test)))


@app.command()
def split(project: ProjectOpt = HERE) -> None:
    """Step 4: stratified, deterministic train/val/test split; the test set is sealed."""
    _show(_run(lambda: _load(project).split()))


@app.command()
def models() -> None:
    """Step 5: list the networks in the model registry."""
    from dlworkflow.models import list_models

    cards = list_models()
    _table(
        "models (model.name in dlworkflow.yaml)",
        ("name", "task", "parameters", "pretrained", "input"),
        [
            (
                c.name,
                ", ".join(c.modalities),
                f"{c.parameters:,}",
                "ImageNet"
                if c.pretrained and {"image", "audio"} & set(c.modalities)
                else "MiniLM"
                if c.pretrained
                else "no",
                c.input,
            )
            for c in cards
        ],
        whole=(0, 2),  # the name and the exact parameter count
    )
    for c in cards:
        _console().print(f"[bold]{c.name}[/]: {c.description.split('. ')[0]}", highlight=False)


@app.command()
def train(
    project: ProjectOpt = HERE,
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.")] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            metavar="MIN",
            help="Time budget in minutes for this run (default train.budget_minutes: 10 on "
            "a CPU, 60 on a GPU): it stops after the epoch that reaches it, keeps the best.",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the last interrupted train run from its last checkpoint."
        ),
    ] = False,
    devices: Annotated[
        int,
        typer.Option(
            min=1,
            help="Data-parallel processes (one per GPU, or CPU processes) on this node; "
            "train.batch_size stays the global batch.",
        ),
    ] = 1,
    nnodes: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="PET_NNODES",
            help="Nodes of a multi-node run (torchrun's c10d rendezvous); run `dlw train` "
            "with the same flags on each node, on a shared project folder.",
        ),
    ] = 1,
    node_rank: Annotated[
        int,
        typer.Option(min=0, envvar="PET_NODE_RANK", help="This node's number, 0 to nnodes-1."),
    ] = 0,
    rdzv_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="PET_RDZV_ENDPOINT",
            help="HOST:PORT of the rendezvous, the same on every node (one of the nodes).",
        ),
    ] = None,
    rdzv_id: Annotated[
        str | None,
        typer.Option(
            envvar="PET_RDZV_ID",
            help="The rendezvous's name, the same on every node (default: project name "
            "and dataset version).",
        ),
    ] = None,
) -> None:
    """Steps 5-6: train the configured model on train, early-stopping on validation."""
    nodes = (
        {
            "nnodes": nnodes,
            "node_rank": node_rank,
            "rdzv_endpoint": rdzv_endpoint,
            "rdzv_id": rdzv_id,
        }
        if nnodes > 1
        else {}
    )
    _show(
        _run(
            lambda: _load(project).train(
                epochs=epochs, resume=resume, devices=devices, budget_minutes=budget, **nodes
            )
        )
    )


@app.command("lr-find")
def lr_find(
    project: ProjectOpt = HERE,
    start: Annotated[float, typer.Option(help="First learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(help="Last learning rate.")] = 1.0,
    steps: Annotated[int, typer.Option(help="Mini-batches, one per learning rate.")] = 100,
) -> None:
    """Step 6: learning-rate range test; writes reports/lr_find.png and suggests a value."""
    _show(_run(lambda: _load(project).lr_find(start=start, end=end, steps=steps)))


@app.command("augment-preview")
def augment_preview(
    project: ProjectOpt = HERE,
    n: Annotated[
        int,
        typer.Option(help="Train samples shown (series: up to 3 a class; clips: up to 6)."),
    ] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the augmentations.")] = 0,
) -> None:
    """Step 6: write a figure of train samples and augmented versions (the `augment:` config):
    images, series (overlaid) or clips' log-mel spectrograms."""
    path = _run(lambda: _load(project).augment_preview(n=n, seed=seed))
    _console().print(f"Wrote {path}", highlight=False)


@app.command()
def evaluate(
    project: ProjectOpt = HERE,
    split: Annotated[
        str,
        typer.Option(help="val (default) or train; the sealed test set is for `dlw test` only."),
    ] = "val",
    as_json: JsonOpt = False,
) -> None:
    """Step 7: metrics with intervals, calibration, slices, baselines and errors on validation;
    any time, the test set stays sealed. Figures in reports/evaluate/<split>/."""
    _result(lambda: _load(project).evaluate(split), as_json)


@app.command()
def explain(
    project: ProjectOpt = HERE,
    split: Annotated[
        str,
        typer.Option(help="val (default) or train; the sealed test set is for `dlw test` only."),
    ] = "val",
    n: Annotated[
        int, typer.Option("--n", help="Mistakes to explain, and correct predictions.")
    ] = 8,
    as_json: JsonOpt = False,
) -> None:
    """Step 7: why the model decides: saliency maps (images), token attributions (texts),
    permutation importance and per-row attributions (tables), for the most confident mistakes
    and random correct predictions. Figures in reports/explain/<split>/."""
    _result(lambda: _load(project).explain(split, n=n), as_json)


@app.command()
def test(project: ProjectOpt = HERE, as_json: JsonOpt = False) -> None:
    """Step 7: the one-time test on the sealed test set. Exit 0 on PASS, 3 on FAIL."""
    result = _result(lambda: _load(project).test(), as_json)
    raise typer.Exit(result.exit_code)


@app.command()
def serve(
    project: ProjectOpt = HERE,
    host: Annotated[
        str | None,
        typer.Option(help="Address to bind (default serve.host: 127.0.0.1, local only)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port: 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes (default serve.workers)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Serve a model that failed or was never tested (needs --reason)."
        ),
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why --force is justified.")] = None,
) -> None:
    """Step 7: serve the champion model over HTTP (ONNX Runtime, bearer token, micro-batching).

    POST /v1/predict, GET /v1/health, GET /v1/model, GET /metrics; hot reload on promotion.
    """
    from dlworkflow.errors import DlwError

    if force and not (reason and reason.strip()):
        _fail(
            DlwError(
                "--force needs a reason.",
                expected='--reason "why this model may serve"',
                received="no reason",
                fix='add --reason "..."',
            )
        )
    if reason and not force:
        _fail(DlwError("--reason is only used with --force.", fix="add --force, or drop --reason"))
    _run(
        lambda: _load(project).serve(
            host=host, port=port, workers=workers, force_reason=reason if force else None
        )
    )


@app.command()
def ui(
    project: ProjectOpt = HERE,
    host: Annotated[
        str, typer.Option(help="Address to bind (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8765,
) -> None:
    """The project in a browser: the nine steps with their state and figures, the step
    reports, and every train and tune run (a local web app; stop it with Ctrl-C).

    Prints the address to open: it carries a token, new at each start, that logs the browser
    in. A host other than 127.0.0.1/localhost makes it reachable from the network (a warning)."""
    from dlworkflow.ui import ui as run_ui

    _run(lambda: run_ui(_load(project).root, host=host, port=port))


@app.command("export")
def export_model(
    project: ProjectOpt = HERE,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Export a model that failed or was never tested (needs --reason)."
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(help="Why --force is justified (recorded in metadata.json and the ledger)."),
    ] = None,
) -> None:
    """Step 7: export the tested model to models/v<N>/ (ONNX with a dynamic batch,
    safetensors, metadata.json), parity checked PyTorch vs ONNX Runtime on validation.
    A PASS model becomes the champion. Exit 3 when refused."""
    from dlworkflow.errors import DlwError

    if reason and not force:
        _fail(DlwError("--reason is only used with --force.", fix="add --force, or drop --reason"))
    _show(_run(lambda: _load(project).export(force=force, reason=reason)))


@app.command()
def report(
    project: ProjectOpt = HERE,
    pdf: Annotated[
        bool,
        typer.Option(
            "--pdf/--no-pdf", help="Also print reports/report.pdf with headless Chromium."
        ),
    ] = True,
) -> None:
    """Step 8: write reports/report.html (one self-contained file), reports/report.pdf and
    reports/model_card.md from the project's records."""
    result = _run(lambda: _load(project).report(pdf=pdf))
    _show(result)
    if pdf and result.pdf is None:
        _console().print(f"[yellow]note:[/] no PDF: {result.pdf_note}", highlight=False)


@app.command()
def promote(
    version: Annotated[int, typer.Argument(help="The exported version to serve (v<N>).")],
    project: ProjectOpt = HERE,
) -> None:
    """Make an exported model version the champion (a running `dlw serve` reloads it)."""
    _show(_run(lambda: _load(project).promote(version)))


@app.command()
def tune(
    project: ProjectOpt = HERE,
    trials: Annotated[
        int | None,
        typer.Option(
            help="Trials in the study in total (default tune.trials; a resumed study counts "
            "its earlier trials)."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop starting trials after this many seconds (default tune.timeout_s)."),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            metavar="MIN",
            help="Time budget in minutes: no trial starts after it (--timeout in minutes).",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Parallel trials on this machine (default tune.workers).")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="optuna (this machine) or ray (a Ray cluster through Ray Tune).")
    ] = "optuna",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (backend ray; default: a local Ray).")
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Write the best parameters into dlworkflow.yaml (shows the diff)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Step 6: hyperparameter search over `tune.space` in dlworkflow.yaml on the validation
    split (Optuna TPE + pruning; resumable: .dlw/tune/study.db); every trial an MLflow child
    run; writes reports/tune.html. The test set is never read. With tune.space empty it
    searches a default space for the model and strategy (`dlw config show` lists it)."""
    from dlworkflow.errors import DlwError

    if budget is not None and timeout is not None:
        _fail(DlwError("--budget and --timeout set the same limit: give one.", fix="drop one"))
    if budget is not None:
        timeout = budget * 60
    _result(
        lambda: _load(project).tune(
            trials=trials,
            timeout=timeout,
            workers=workers,
            backend=backend,
            address=address,
            apply=apply,
        ),
        as_json,
    )


@app.command()
def versions(project: ProjectOpt = HERE, as_json: JsonOpt = False) -> None:
    """Exported model versions (model, verdict, forced reason, date), the champion and the
    earlier champions (the rollback history)."""
    _result(lambda: _load(project).versions(), as_json)


@app.command()
def rollback(
    project: ProjectOpt = HERE,
    to: Annotated[
        int | None,
        typer.Option(
            "--to", help="The exported version to go back to (default: the previous champion)."
        ),
    ] = None,
) -> None:
    """Make the previous champion (or version --to N) the champion again; a running
    `dlw serve` reloads it."""
    _show(_run(lambda: _load(project).rollback(to=to)))


@app.command("review-label")
def review_label(
    sample_id: Annotated[
        str | None, typer.Argument(help="The sample to decide on (its id in the manifest).")
    ] = None,
    decision: Annotated[
        str | None, typer.Argument(help="keep, relabel (with --label) or exclude.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="The new label of a relabel: one of the classes.")
    ] = None,
    list_: Annotated[
        bool,
        typer.Option(
            "--list", help="List the label-issue candidates of `dlw explore` and their decisions."
        ),
    ] = False,
    project: ProjectOpt = HERE,
    as_json: JsonOpt = False,
) -> None:
    """Label review: keep, relabel or exclude a sample whose label `dlw explore` doubts
    (its candidates: --list). Decisions go to labels/review.csv and the ledger; the next
    `dlw ingest` applies them as a new dataset version (the original files are never
    changed). Samples of the sealed test set are refused. The Labels page of `dlw ui` does
    the same."""
    from dlworkflow.errors import DlwError

    if list_:
        if sample_id or decision or label:
            _fail(DlwError("--list takes no sample, decision or --label.", fix="drop them"))
        _result(lambda: _load(project).label_candidates(), as_json)
        return
    if not sample_id or not decision:
        _fail(
            DlwError(
                "Give a sample id and a decision, or --list.",
                expected="dlw review-label SAMPLE_ID keep|relabel|exclude [--label CLASS]",
                received=" ".join(filter(None, (sample_id, decision))) or "nothing",
                fix="`dlw review-label --list` shows the candidates",
            )
        )
    assert sample_id is not None and decision is not None
    _result(lambda: _load(project).review_label(sample_id, decision, label), as_json)


@app.command()
def monitor(
    project: ProjectOpt = HERE,
    inputs: Annotated[
        Path | None,
        typer.Option(
            help="Recent inputs instead of the server's log: a folder of images, or a CSV/JSONL "
            "of texts or rows."
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="CSV of id,label for recent predictions (live metrics against the test estimate)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only predictions at or after this ISO time (e.g. 2026-11-27T00:00)."),
    ] = None,
    window: Annotated[
        int | None, typer.Option(help="Only the newest N predictions (default monitor.window).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(help="POST an alert to this URL (default monitor.webhook).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Step 9: compare live traffic with the validation reference (input, embedding,
    prediction, confidence and out-of-distribution drift; live metrics with --labels);
    write reports/monitor.html. Exit 0 OK, 4 ALERT, 75 when another run holds the lock."""
    result = _result(
        lambda: _load(project).monitor(
            inputs=inputs, labels=labels, since=since, window=window, webhook=webhook
        ),
        as_json,
    )
    raise typer.Exit(result.exit_code)


@app.command()
def retrain(
    data: Annotated[
        str, typer.Option("--data", help="Fresh labelled data (any `dlw ingest` source).")
    ],
    project: ProjectOpt = HERE,
    warm_start: Annotated[
        bool | None,
        typer.Option(
            "--warm-start/--no-warm-start",
            help="Start the challenger from the champion's weights (default retrain.warm_start).",
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            metavar="MIN",
            help="The challenger's training budget in minutes (default train.budget_minutes).",
        ),
    ] = None,
) -> None:
    """Step 9: ingest fresh data as a new dataset version (the sealed test set stays sealed;
    fresh test samples form a separate sealed slice), train a challenger, compare it with the
    champion on the same sealed data, promote it only if it is better by retrain.margin and
    passes the gate. Resumable. Exit 0 promoted, 3 champion kept, 75 busy."""
    result = _run(
        lambda: _load(project).retrain(data, warm_start=warm_start, budget_minutes=budget)
    )
    _show(result)
    raise typer.Exit(result.exit_code)


@app.command()
def predict(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Image or audio files or folders (image, audio models); .npy or .json "
            "series files (sequence models); CSV files of rows (text, tabular)."
        ),
    ],
    project: ProjectOpt = HERE,
    out: Annotated[Path, typer.Option(help="CSV to write.")] = Path("predictions.csv"),
    version: Annotated[
        int | None, typer.Option(help="Exported version to use (default: the champion).")
    ] = None,
) -> None:
    """Batch predictions through the exported model (ONNX Runtime) to a CSV: path, the task's
    columns (classification: label, confidence, p_<class>; regression: value; multi-label:
    labels, p_<label>), error (unusable files get an error, not a crash)."""
    _show(_run(lambda: _load(project).predict(list(paths), out=out, version=version)))


@app.command()
def audit(project: ProjectOpt = HERE, as_json: JsonOpt = False) -> None:
    """Step 8: the ML Test Score (28 tests, Breck et al. 2017) from the project's records and
    the `audit:` checklist in dlworkflow.yaml; section scores, the final score (their minimum)
    and what to do next for each missing point. Writes reports/audit.json."""
    _result(lambda: _load(project).audit(), as_json)


@app.command("run")
def run_all(project: ProjectOpt = HERE) -> None:
    """Run every step that is stale or has not run, in workflow order."""
    try:
        loaded = _load(project)
        results = loaded.run(on_result=_show)
    except Exception as exc:
        _fail(exc)
    if not results:
        _console().print("Every step is up to date; nothing to run.")
    _show(loaded.status())
    _exit_with_verdict(results)


@app.command(cls=_lazy_help(task=_demo_task_help))
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo project.")] = Path(
        "dlw-demo"
    ),
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.")] = None,
    task: Annotated[
        str, typer.Option(help="The demo's task (the list: `dlw demo --help`).")
    ] = "image-classification",
    tune: Annotated[
        bool,
        typer.Option(
            "--tune",
            help="After the test, a short `dlw tune` study of the default search space (a "
            "few 1-epoch trials, 20 s; reports/tune.html). Nothing is applied.",
        ),
    ] = False,
) -> None:
    """All nine steps on a new project: real data of the task (builtin:mnist5k for the
    default, image-classification) through
    define, ingest, explore, split, train, test and export; data from another source is
    monitored (drift) and retrained on (champion vs challenger); explore runs again on the
    grown data and the report is written. Ends with the time per step; exit code 3 when the
    test says FAIL."""
    from dlworkflow.project import Project
    from dlworkflow.workflow import demo_verdicts

    try:
        project, results = Project.demo(
            directory, epochs=epochs, task=task, on_result=_show, tune=tune
        )
    except Exception as exc:
        _fail(exc)
    _show(project.status())
    _print_artifacts(project)
    _show(results[-1])  # the time per step and the total
    _FAST_EXIT.append(True)
    _exit_with_verdict(demo_verdicts(results))


def _print_artifacts(project: Any) -> None:
    p = project.paths
    lines = [
        ("config (the problem spec and every setting)", p.config),
        ("ledger (every step run, every test-set read)", p.ledger),
        ("manifest and quarantine", p.manifest),
        ("split and test seal", p.split_dir),
        ("trained model (safetensors + json)", p.train_dir),
        ("reports (EDA, evaluation figures)", p.reports),
        ("exported models (ONNX + metadata, champion.json; `dlw serve` serves it)", p.models),
        ("MLflow runs", f"{p.mlflow_db}  (mlflow ui --backend-store-uri {p.mlflow_db_uri})"),
    ]
    for label, path in lines:
        _console().print(f"  {label}: {path}", highlight=False)


def _exit_with_verdict(results: list[Any]) -> None:
    codes = [r.exit_code for r in results if hasattr(r, "exit_code")]
    if codes and codes[-1]:
        raise typer.Exit(codes[-1])


_FAST_EXIT: list[bool] = []  # set by a command whose process may skip the teardown


def main() -> None:
    try:
        app()
    except SystemExit as stop:
        if _FAST_EXIT:
            _exit_now(stop.code)
        raise


def _exit_now(code: Any) -> None:
    """End the process without the interpreter's teardown of every module and object, which
    after a demo (torch, MLflow, ONNX Runtime and pandas loaded) takes about 3 s. Output is
    flushed and the exit handlers run first (logging, MLflow's queues); every file the demo
    wrote is closed by then, and its databases committed. Only for the `dlw` process itself:
    a command invoked in-process (tests, CliRunner) never gets here."""
    import atexit
    import os

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    atexit._run_exitfuncs()  # noqa: SLF001 (the handlers a normal exit would run)
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    main()
