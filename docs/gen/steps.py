"""Regenerate the nine step pages (docs/steps/*.md) and their figures (docs/steps/img/) from a
real run of the demo.

    .venv/bin/python docs/gen/steps.py            # run the demo and the extra commands (minutes)
    .venv/bin/python docs/gen/steps.py --cached   # re-render the pages from the last run's capture

What it does:

1. `Project.demo` (what `dlw demo` runs) in a temporary folder, with `on_result` recording each
   step's result exactly as the CLI prints it (the same rich renderable, 100 columns, no colour).
2. The commands the demo does not run, as real `dlw` subprocesses in the demo project:
   `dlw datasets`, `dlw init`, `dlw models`, `dlw lr-find`, `dlw augment-preview`,
   `dlw evaluate`, `dlw versions`, `dlw predict`, `dlw serve` (with two HTTP requests),
   `dlw audit`, `dlw status`, `dlw tune` (a three-trial study), `dlw rollback` and
   `dlw explain`; then a screenshot of every `dlw ui` page (docs/gen/ui_shots.py: Playwright
   and the system Chromium) into docs/guide/img/.
3. Figures the steps wrote (their results' `figures()` and reports/*.png) are copied into
   docs/steps/img/, downscaled and palette-quantised to keep the site small.
4. docs/gen/templates/<n>-<name>.md hold the explanation of each step; their placeholders
   `{{ run NAME }}` (the command and its output) and `{{ figure NAME }}` are filled in with
   what was recorded. A placeholder with nothing recorded is an error, never left blank.

The only edits to the recorded text: the temporary folder's path is shown as `~/`, and the
serve token as `<token>`. The capture (raw outputs and every figure) is kept in
docs/gen/capture/ for --cached; the pages get only the figures they show.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "docs" / "gen" / "templates"
PAGES = ROOT / "docs" / "steps"
IMAGES = PAGES / "img"
CAPTURE_DIR = ROOT / "docs" / "gen" / "capture"  # the last run: capture.json, figures/*.png
CAPTURE = CAPTURE_DIR / "capture.json"
FIGURES = CAPTURE_DIR / "figures"
DLW = Path(sys.executable).parent / "dlw"
WIDTH = 100
MAX_FIGURE_WIDTH = 900

# result class of a demo step -> (record name, the command that prints it)
DEMO_COMMANDS = {
    "DefineResult": ("define", None),  # built from DEMO_PROBLEM below
    "IngestResult": ("ingest", "dlw ingest builtin:mnist5k"),
    "ExploreResult": ("explore", "dlw explore"),
    "SplitResult": ("split", "dlw split"),
    "TrainResult": ("train", "dlw train"),
    "TestResult": ("test", "dlw test"),
    "ExportResult": ("export", "dlw export"),
    "ReportResult": ("report", "dlw report"),
    "MonitorResult": (
        "monitor",
        "dlw monitor --inputs incoming/scanner-b --labels incoming/scanner-b-labels.csv",
    ),
    "RetrainResult": ("retrain", "dlw retrain --data incoming/scanner-b"),
}
# a step the demo runs again, by its record name: the later run's command
LATER_COMMANDS = {
    "monitor-2": "dlw monitor --inputs incoming/scanner-b-later "
    "--labels incoming/scanner-b-later-labels.csv",
}


class Capture:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runs: dict[str, dict[str, Any]] = {}
        self.figures: dict[str, dict[str, str]] = {}
        self.files: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    def run(self, name: str, command: str, output: str, code: int = 0) -> None:
        if name in self.runs:
            raise SystemExit(f"two records named {name!r}")
        self.runs[name] = {"command": command, "output": output, "exit": code}

    def figure(self, name: str, source: Path | str | bytes, caption: str) -> None:
        FIGURES.mkdir(parents=True, exist_ok=True)
        _save_small_png(source, FIGURES / f"{name}.png")
        self.figures[name] = {"file": f"img/{name}.png", "caption": caption}


BOX = "│┃"


def clean(text: str, tmp: str) -> str:
    """The run's temporary folder shown as ~; inside a rich table the cell keeps its width
    (the spaces the shorter path frees go before the cell's right border)."""
    lines = []
    for line in text.splitlines():
        while tmp in line:
            at = line.index(tmp)
            line = line[:at] + "~" + line[at + len(tmp) :]
            border = next((i for i in range(at, len(line)) if line[i] in BOX), None)
            if border is not None:
                line = line[:border] + " " * (len(tmp) - 1) + line[border:]
        lines.append(line.rstrip())
    return "\n".join(lines).strip("\n")


def _render(result: Any) -> str:
    from rich.console import Console

    console = Console(
        file=io.StringIO(),
        width=WIDTH,
        color_system=None,
        record=True,
        force_terminal=False,
        highlight=False,
    )
    console.print(result)
    return console.export_text()


def _save_small_png(source: Path | str | bytes, target: Path) -> None:
    import base64

    from PIL import Image

    if isinstance(source, str) and source.startswith("data:"):
        source = base64.b64decode(source.split(",", 1)[1])
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    img = Image.open(io.BytesIO(data))
    img.load()
    if img.mode in ("RGBA", "LA", "P"):
        background = Image.new("RGB", img.size, "white")
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").split()[-1])
        img = background
    img = img.convert("RGB")
    if img.width > MAX_FIGURE_WIDTH:
        img = img.resize(
            (MAX_FIGURE_WIDTH, round(img.height * MAX_FIGURE_WIDTH / img.width)), Image.LANCZOS
        )
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def _dlw(
    cap: Capture,
    name: str,
    args: list[str],
    cwd: Path,
    *,
    shown: str | None = None,
    ok: tuple[int, ...] = (0,),
) -> str:
    env = {
        **os.environ,
        "COLUMNS": str(WIDTH),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONUNBUFFERED": "1",
    }
    start = time.monotonic()
    proc = subprocess.run([str(DLW), *args], cwd=cwd, env=env, capture_output=True, text=True)
    cap.seconds[name] = round(time.monotonic() - start, 1)
    if proc.returncode not in ok:
        raise SystemExit(
            f"`dlw {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    cap.run(name, shown or "dlw " + " ".join(args), proc.stdout, proc.returncode)
    return proc.stdout


def _quote(value: str) -> str:
    return f'"{value}"' if re.search(r"[\s,()']", value) else value


def _define_command(problem: dict[str, Any]) -> str:
    parts = [
        "dlw define",
        f"--objective {_quote(problem['objective'])}",
        f"--metric {problem['metric']}",
        f"--target {problem['target']}",
        f"--max-latency-ms {problem['max_latency_ms']:g}",
        f"--max-model-size-mb {problem['max_model_size_mb']:g}",
    ]
    parts += [f"--constituency {_quote(c)}" for c in problem["constituencies"]]
    parts += [f"--assumption {_quote(a)}" for a in problem["assumptions"]]
    return " \\\n    ".join(parts)


def capture(tmp: Path) -> Capture:
    from dlworkflow.demo_plans import demo_plan
    from dlworkflow.project import Project

    mnist = demo_plan("image-classification")

    cap = Capture(tmp)
    scratch = tmp / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)  # an earlier --keep run
    scratch.mkdir()
    _dlw(cap, "datasets", ["datasets"], scratch)
    _dlw(cap, "init", ["init", "my-digits"], scratch)
    cap.files["init-yaml"] = (scratch / "my-digits" / "dlworkflow.yaml").read_text()

    # 1. the demo, each result as `dlw demo` prints it
    demo_dir = tmp / "mnist-demo"
    seen: dict[str, int] = {}

    def record(result: Any) -> None:
        kind = type(result).__name__
        name, command = DEMO_COMMANDS.get(  # a result the demo added: shown as it prints it
            kind, (re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower(), "dlw demo   # also prints")
        )
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}-{seen[name]}"
            command = LATER_COMMANDS.get(name, command)
        if kind == "DefineResult":
            command = _define_command(mnist.problem)
        cap.run(name, command, _render(result), getattr(result, "exit_code", 0) or 0)
        for i, (caption, source) in enumerate(result.figures()):
            cap.figure(f"{name}-{i + 1}", source, caption)

    start = time.monotonic()
    project, results = Project.demo(demo_dir, progress=False, on_result=record)
    cap.seconds["demo"] = round(time.monotonic() - start, 1)
    if results and type(results[-1]).__name__ == "StepTimes":  # printed at the end, too
        cap.run("demo-times", "dlw demo mnist-demo   # at the end", _render(results[-1]))
    from dlworkflow.cli import _print_artifacts  # what `dlw demo` prints last

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        _print_artifacts(project)
    cap.run("demo-artifacts", "dlw demo mnist-demo   # its last lines", buffer.getvalue())
    cap.files["demo-yaml"] = (demo_dir / "dlworkflow.yaml").read_text()
    for section, text in yaml_sections(cap.files["demo-yaml"]).items():
        cap.files[f"demo-yaml-{section}"] = text
    eda_figures(cap, demo_dir / "reports" / "eda.html")

    # 2. commands the demo does not run, in the demo project
    _dlw(cap, "status", ["status"], demo_dir)
    _dlw(cap, "models", ["models"], demo_dir)
    _dlw(cap, "lr-find", ["lr-find"], demo_dir)
    Project.load(demo_dir).update_config(AUGMENT)  # the demo trains without augmentation
    cap.files["augment-yaml"] = yaml_sections((demo_dir / "dlworkflow.yaml").read_text())["augment"]
    _dlw(cap, "augment-preview", ["augment-preview"], demo_dir)
    _dlw(cap, "evaluate", ["evaluate"], demo_dir)
    _dlw(cap, "versions", ["versions"], demo_dir)
    sample = sorted((mnist.write_incoming(demo_dir) / "3").iterdir())[:4]
    _dlw(
        cap,
        "predict",
        ["predict", *[str(p.relative_to(demo_dir)) for p in sample], "--out", "predictions.csv"],
        demo_dir,
    )
    cap.files["predictions-csv"] = (demo_dir / "predictions.csv").read_text()
    _serve(cap, demo_dir, sample[0])
    _dlw(cap, "audit", ["audit"], demo_dir)
    reports = demo_dir / "reports"
    for png, caption in (
        ("lr_find.png", "learning-rate range test (reports/lr_find.png)"),
        ("augment_preview.png", "augment preview (reports/augment_preview.png)"),
    ):
        if (reports / png).is_file():
            cap.figure(Path(png).stem.replace("_", "-"), reports / png, caption)
    evaluate_dir = reports / "evaluate" / "val"
    for png in sorted(evaluate_dir.glob("*.png")):
        cap.figure(
            f"evaluate-{png.stem.replace('_', '-')}", png, f"reports/evaluate/val/{png.name}"
        )
    cap.files["report-files"] = "\n".join(
        sorted(str(p.relative_to(demo_dir)) for p in reports.rglob("*") if p.is_file())
    )
    # a short study, then a rollback: both after everything the pages show of the demo
    _tune(cap, demo_dir)
    _dlw(cap, "rollback", ["rollback"], demo_dir, ok=(0, 2))
    _dlw(cap, "status-end", ["status"], demo_dir, shown="dlw status")
    # the screenshots of every `dlw ui` page (docs/guide/img/ui-*.png), the explanations too
    _dlw(cap, "explain", ["explain"], demo_dir)
    import ui_shots  # docs/gen/ui_shots.py, beside this file

    ui_shots.take(demo_dir)
    return cap


def yaml_sections(text: str) -> dict[str, str]:
    """Each top-level mapping of a dlworkflow.yaml as written (its lines, comments dropped)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if re.match(r"[a-z_]+:\s*$", line):
            current = sections.setdefault(line.rstrip(":").strip(), [line])
        elif re.match(r"\S", line):
            current = None
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


EDA_FIGURES = {  # section heading of reports/eda.html -> (figure name, caption)
    "3. Classes": ("explore-classes", "class balance (reports/eda.html, section 3)"),
    "4. Images": ("explore-images", "image statistics (reports/eda.html, section 4)"),
    "6. 2-D map": ("explore-map", "2-D map of the samples (reports/eda.html, section 6)"),
}


def eda_figures(cap: Capture, eda: Path) -> None:
    """The first figure under some sections of the EDA report (its images are data: URIs)."""
    text = eda.read_text(encoding="utf-8")
    headings = [
        (m.start(), re.sub(r"<[^>]+>", "", m.group(2)).strip())
        for m in re.finditer(r"<(h[1-4])[^>]*>(.*?)</\1>", text, re.S)
    ]
    for match in re.finditer(r"<img[^>]*src=['\"](data:image/png;base64,[^'\"]+)['\"]", text):
        before = [title for start, title in headings if start < match.start()]
        if before and before[-1] in EDA_FIGURES:
            name, caption = EDA_FIGURES[before[-1]]
            if name not in cap.figures:
                cap.figure(name, match.group(1), caption)
    missing = [n for n, _ in EDA_FIGURES.values() if n not in cap.figures]
    if missing:
        raise SystemExit(f"no figure found in {eda} for {missing}")


# shown by `dlw augment-preview` (after the demo; digits are not flipped)
AUGMENT = {"augment.rotation": 10.0, "augment.translate": 0.1, "augment.erasing": 0.25}


def _tune(cap: Capture, demo_dir: Path) -> None:
    from dlworkflow.project import Project

    project = Project.load(demo_dir)
    project.update_config(
        {
            "tune.space": {
                "train.learning_rate": {"type": "log_uniform", "low": 3.0e-4, "high": 1.0e-2},
                "train.batch_size": {"type": "categorical", "choices": [64, 128]},
            },
            "tune.epochs": 2,
            "tune.trials": 3,
        }
    )
    cap.files["tune-yaml"] = (
        "tune:\n  space:\n    train.learning_rate: {type: log_uniform, "
        "low: 3.0e-4, high: 1.0e-2}\n    train.batch_size: {type: "
        "categorical, choices: [64, 128]}\n  epochs: 2\n  trials: 3\n"
    )
    _dlw(cap, "tune", ["tune"], demo_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(cap: Capture, demo_dir: Path, image: Path) -> None:
    """`dlw serve` in the background, a health check and one prediction, then Ctrl-C."""
    port = _free_port()
    env = {**os.environ, "COLUMNS": str(WIDTH), "PYTHONUNBUFFERED": "1"}
    env.pop("DLW_SERVE_TOKEN", None)
    proc = subprocess.Popen(
        [str(DLW), "serve", "--port", str(port)],
        cwd=demo_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    token = None
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("dlw serve ended early:\n" + "".join(lines))
            lines.append(line)
            if line.startswith("  ") and token is None and "token" in lines[-2]:
                token = line.strip()
            if line.startswith("Try:"):
                break
        stored = demo_dir / ".dlw" / "serve" / "token"
        if token is None and stored.is_file():  # served before: the kept token (mode 600)
            token = stored.read_text(encoding="utf-8").strip()
        if token is None:
            raise SystemExit("dlw serve printed no token:\n" + "".join(lines))
        base = f"http://127.0.0.1:{port}"
        health = _wait_for(f"{base}/v1/health")  # "Try:" is printed before uvicorn binds
        denied = _http(f"{base}/v1/model")
        boundary = "dlwdocs"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{image.name}"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        body += image.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        predicted = _http(
            f"{base}/v1/predict",
            body=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    output = "".join(lines).replace(token, "<token>").replace(f":{port}", ":8000")
    cap.run("serve", "dlw serve", output)
    rel = image.relative_to(demo_dir)
    cap.run("curl-health", "curl http://127.0.0.1:8000/v1/health", health)
    cap.run("curl-unauthorized", "curl http://127.0.0.1:8000/v1/model", denied)
    cap.run(
        "curl-predict",
        f"curl -H 'Authorization: Bearer <token>' -F files=@{rel} http://127.0.0.1:8000/v1/predict",
        predicted,
    )


def _wait_for(url: str, seconds: float = 120) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return _http(url)
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _http(url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2)
    return f"HTTP {status}\n{text}"


PLACEHOLDER = re.compile(r"\{\{\s*(run|figure|file)\s+([\w.-]+)\s*\}\}")


def _fill(match: re.Match[str], *, where: str, data: dict[str, Any], used: set[str]) -> str:
    kind, name = match.groups()
    used.add(f"{kind}:{name}")
    store = data[{"run": "runs", "file": "files", "figure": "figures"}[kind]]
    if name not in store:
        raise SystemExit(f"{where}: nothing recorded for {{{{ {kind} {name} }}}}")
    if kind == "run":
        run = store[name]
        output = clean(run["output"], data["tmp"])
        exit_note = f"\n# exit code {run['exit']}" if run["exit"] else ""
        return f"```console\n$ {clean(run['command'], data['tmp'])}\n{output}{exit_note}\n```"
    if kind == "file":
        return clean(str(store[name]), data["tmp"])
    fig = store[name]
    IMAGES.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIGURES / Path(fig["file"]).name, PAGES / fig["file"])
    return f"![{fig['caption']}]({fig['file']})\n/// caption\n{fig['caption']}\n///"


def render_pages(data: dict[str, Any]) -> list[Path]:
    used: set[str] = set()
    written = []
    shutil.rmtree(IMAGES, ignore_errors=True)  # only the figures the pages show
    for template in sorted(TEMPLATES.glob("*.md")):
        fill = functools.partial(_fill, where=template.name, data=data, used=used)
        page = PLACEHOLDER.sub(fill, template.read_text(encoding="utf-8"))
        header = (
            "<!-- Generated by docs/gen/steps.py from "
            f"docs/gen/templates/{template.name} and a demo run; edit the template. -->\n"
        )
        target = PAGES / template.name
        target.write_text(header + page, encoding="utf-8")
        written.append(target)
    return written


def main() -> None:
    os.environ["COLUMNS"] = str(WIDTH)  # rich consoles made by dlworkflow.cli in this process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cached",
        action="store_true",
        help="re-render from docs/gen/capture.json without running the demo",
    )
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    if not args.cached:
        shutil.rmtree(FIGURES, ignore_errors=True)
        tmp = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="dlw-docs-"))
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            cap = capture(tmp)
        finally:
            if not args.keep:
                shutil.rmtree(tmp, ignore_errors=True)
        CAPTURE.write_text(
            json.dumps(
                {
                    "tmp": str(tmp),
                    "runs": cap.runs,
                    "figures": cap.figures,
                    "files": cap.files,
                    "seconds": cap.seconds,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
    data = json.loads(CAPTURE.read_text(encoding="utf-8"))
    for page in render_pages(data):
        print(f"wrote {page.relative_to(ROOT)}")
    size = sum(p.stat().st_size for p in IMAGES.glob("*.png"))  # what the site carries
    print(
        f"{len(list(IMAGES.glob('*.png')))} figures, {size / 1e6:.2f} MB; "
        f"timings (s): {data['seconds']}"
    )


if __name__ == "__main__":
    main()
