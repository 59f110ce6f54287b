"""`dlw ui` page times on the demo project: does every page answer in < 300 ms?

Builds the demo project the way a user does (`dlw demo DIR`: MNIST-5k through the nine steps,
then `dlw evaluate` and `dlw explain` on the validation split, so that the evaluation, cell and
explanations pages have what they show), starts the real `dlw ui --project DIR --port P` as
its own process (DLW_UI_TOKEN fixed), logs in once with the token URL and loads every page of
PAGES over real HTTP/1.1 (one keep-alive connection, the login cookie, the whole body read),
as a browser asks for the HTML (its images and the stylesheet are further requests, not timed
here). One warm-up load per page, then --loads rounds; each round loads every page once, in
PAGES order, so load from other processes hits every page alike. Prints one table: page,
address, status, size, median, p90 and max milliseconds, MET / NOT MET per page.

Goals (exit 1 when one is not met): each page answers 200 with a median < 300 ms; the first
verdict line is the slowest page's median (bench/all.py shows it).

    .venv/bin/python bench/ui.py [--loads 50] [--project DIR] [--json FILE] [--quick]

--quick (what `make bench-all` runs): 20 loads a page. --project DIR measures an existing
project as it is (nothing is run on it; pages whose address needs what it lacks are left out
with the reason). --json FILE writes every page's row, the goal and the conditions.

PAGES is the one list of pages: a new page is one line (name, address). An address may name
facts of the project in braces, filled in by facts(): {true} and {predicted} (the fullest
cell of the validation confusion matrix: the longest list of samples), {run_a} and
{run_b} (the MLflow ids of the two newest train runs), {version} (the newest exported version),
{val_sample} (the first validation sample id, quoted as the pages quote it).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, too
sys.path.insert(0, str(Path(__file__).resolve().parent))

from verdict import Goal, apply_quick, conditions, finish, work_folder  # noqa: E402

# The pages, in the order they are loaded: (name, address). Extend here.
PAGES: tuple[tuple[str, str], ...] = (
    ("overview", "/"),
    ("runs", "/runs"),
    ("runs compare", "/runs/compare?run={run_a}&run={run_b}"),
    ("runs study", "/runs/study"),
    ("data", "/data"),
    ("data samples", "/data/samples?class=0"),
    ("data map", "/data/map"),
    ("data duplicates", "/data/duplicates"),
    ("data quarantine", "/data/quarantine"),
    ("labels", "/labels"),
    ("evaluation", "/evaluation"),
    ("evaluation cell", "/evaluation/val/cell?true={true}&predicted={predicted}"),
    ("cell thumbnail", "/evaluation/val/image/{val_sample}"),
    ("evaluation test", "/evaluation?split=test"),
    ("explanations", "/explanations"),
    ("deployment", "/deployment"),
    ("deployment confirm", "/deployment/confirm?action=promote&version={version}"),
    ("monitor", "/monitor"),
    ("report eda.html", "/reports/eda.html"),
    ("report report.html", "/reports/report.html"),
    ("health", "/health"),
)
GOAL_MS = 300.0
TOKEN = "bench-ui-token-" + "u" * 32
QUICK = {"loads": 20}
START_TIMEOUT_S = 60.0


def say(text: str) -> None:
    print(text, flush=True)


def dlw(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlworkflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def build(folder: Path) -> Path:
    """`dlw demo` (exit 3, a FAIL verdict, still builds every page), then evaluate and explain
    on the validation split."""
    root = folder / "demo"
    for args in (["demo", str(root)], ["evaluate", "-p", str(root)], ["explain", "-p", str(root)]):
        start = time.perf_counter()
        done = dlw(*args)
        say(f"  dlw {args[0]}: exit {done.returncode}, {time.perf_counter() - start:.0f} s")
        if done.returncode not in (0, 3):
            raise SystemExit(f"dlw {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return root


def facts(root: Path) -> dict[str, Any]:
    """What the addresses of PAGES may name (absent when the project lacks it)."""
    from dlworkflow.errors import DlwError
    from dlworkflow.project import Project
    from dlworkflow.runtime import versions as V
    from dlworkflow.store import load_split

    project = Project.load(root)
    known: dict[str, Any] = {}
    metrics = root / "reports" / "evaluate" / "val" / "metrics.json"
    if metrics.is_file():
        confusion = json.loads(metrics.read_text()).get("confusion") or []
        cells = [(n, i, j) for i, row in enumerate(confusion) for j, n in enumerate(row)]
        if cells:  # the fullest cell: the longest list of samples
            _, known["true"], known["predicted"] = max(cells)
    with contextlib.suppress(DlwError, OSError):  # a project not split yet has none
        val = load_split(project, "val")["sample_id"]
        if len(val):
            known["val_sample"] = quote(str(sorted(val)[0]))  # as the pages' urlencode
    runs = [r.summary.get("mlflow_run_id") for r in project.ledger.history("train")]
    runs = [r for r in runs if r]
    if len(runs) >= 2:
        known["run_a"], known["run_b"] = runs[-1], runs[-2]
    versions = [int(m["version"]) for m in V.versions(root) if "version" in m]
    if versions:
        known["version"] = max(versions)
    return known


def addresses(root: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, address) of each page the project can show, and why any other was left out."""
    known = facts(root)
    pages, left_out = [], []
    for name, template in PAGES:
        try:
            pages.append((name, template.format(**known)))
        except KeyError as missing:
            left_out.append(f"{name} ({template}): the project has no {missing.args[0]}")
    return pages, left_out


def free_port() -> int:
    from dlworkflow.deploy.serve.loadgen import free_port as pick

    return pick()


def start_ui(root: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "DLW_UI_TOKEN": TOKEN}
    command = [sys.executable, "-m", "dlworkflow", "ui", "--project", str(root)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"dlw ui exited {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"dlw ui did not answer /health on port {port} in {START_TIMEOUT_S:.0f} s")


def login(port: int) -> str:
    """The cookie header the token URL sets (the 303 to "/")."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/?token={TOKEN}")
    response = conn.getresponse()
    response.read()
    cookie = response.getheader("set-cookie") or ""
    conn.close()
    if response.status != 303 or not cookie:
        raise SystemExit(f"the token URL answered {response.status} without a cookie")
    return cookie.split(";", 1)[0]


def load(conn: http.client.HTTPConnection, path: str, cookie: str) -> tuple[float, int, int]:
    """(milliseconds to the last byte of the body, status, bytes)."""
    start = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie, "Accept": "text/html"})
    response = conn.getresponse()
    body = response.read()
    return (time.perf_counter() - start) * 1000.0, response.status, len(body)


def measure(port: int, pages: list[tuple[str, str]], loads: int) -> dict[str, dict[str, Any]]:
    cookie = login(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    rows: dict[str, dict[str, Any]] = {}
    for name, path in pages:  # the warm-up: imports, caches, the first read of each record
        _, status, size = load(conn, path, cookie)
        rows[name] = {"page": name, "path": path, "ms": [], "status": {status}, "bytes": size}
    for _ in range(loads):
        for name, path in pages:
            ms, status, size = load(conn, path, cookie)
            rows[name]["ms"].append(ms)
            rows[name]["status"].add(status)
            rows[name]["bytes"] = size
    conn.close()
    for row in rows.values():
        ms = row.pop("ms")
        row["status"] = sorted(row["status"])
        row["loads"] = len(ms)
        row["median_ms"] = statistics.median(ms)
        row["p90_ms"] = float(np.percentile(ms, 90))
        row["max_ms"] = max(ms)
        row["met"] = row["status"] == [200] and row["median_ms"] < GOAL_MS
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ["page", "address", "status", "bytes", "median ms", "p90 ms", "max ms", "goal"]
    table = [
        [
            r["page"],
            r["path"] if len(r["path"]) <= 48 else r["path"][:45] + "...",
            "/".join(map(str, r["status"])),
            f"{r['bytes']:,}",
            f"{r['median_ms']:.1f}",
            f"{r['p90_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            "MET" if r["met"] else "NOT MET",
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    right = {2, 3, 4, 5, 6}
    for row in [header, *table]:
        print(
            "  ".join(
                c.rjust(w) if i in right else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths))
            )
        )


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=50, help="timed loads per page (>= 20)")
    parser.add_argument("--project", type=Path, help="measure this project as it is")
    parser.add_argument("--json", type=Path, help="write the rows, goal and conditions here")
    parser.add_argument("--quick", action="store_true", help=f"bench-all size: {QUICK}")
    args = parser.parse_args(argv)
    apply_quick(args, QUICK, argv)
    if args.loads < 20:
        parser.error("--loads must be at least 20 (the goal is a median over 20 loads)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    with work_folder(None, "dlw-ui-bench-") as folder:
        if args.project:
            root = args.project.resolve()
            say(f"project: {root} (as it is)")
        else:
            say(f"building the demo project in {folder} ...")
            start = time.perf_counter()
            root = build(folder)
            say(f"  built in {time.perf_counter() - start:.0f} s")
        pages, left_out = addresses(root)
        port = free_port()
        server = start_ui(root, port)
        try:
            rows = list(measure(port, pages, args.loads).values())
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
    print(
        f"\n`dlw ui` on {root.name} (MNIST-5k demo, then dlw evaluate and dlw explain): "
        f"{len(rows)} pages, 1 warm-up + {args.loads} loads each over one keep-alive HTTP "
        f"connection, the whole body read; goal: median < {GOAL_MS:.0f} ms and status 200"
    )
    print_table(rows)
    for reason in left_out:
        print(f"left out: {reason}")
    slowest = max(rows, key=lambda r: r["median_ms"])
    met = sum(r["met"] for r in rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "goal_median_ms": GOAL_MS,
                    "loads": args.loads,
                    "pages": rows,
                    "left_out": left_out,
                    "met": met == len(rows) and not left_out,
                    "conditions": conditions(),
                },
                indent=1,
            )
            + "\n"
        )
    goals = [
        Goal(
            f"slowest page median ({slowest['page']})",
            slowest["median_ms"],
            "<",
            GOAL_MS,
            unit=" ms",
            detail=f"{met} of {len(rows)} pages MET, {len(left_out)} left out",
        ),
        *(
            Goal(
                f"{r['page']} median",
                r["median_ms"] if r["status"] == [200] else None,
                "<",
                GOAL_MS,
                unit=" ms",
                detail=f"p90 {r['p90_ms']:.1f} ms; status {'/'.join(map(str, r['status']))}",
            )
            for r in rows
        ),
    ]
    if left_out:
        goals.append(Goal("pages left out", len(left_out), "<=", 0))
    finish(goals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
