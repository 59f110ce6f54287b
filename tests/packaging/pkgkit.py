"""Helpers of the packaging tests (a uniquely named module): fresh venvs, pip, lock files.

The wheel and the sdist are built once per session (`python -m build`, isolated build
environment, from a copy of the repository's files: git's tracked and untracked-but-not-ignored
files, so the shared working tree gets no build/ or egg-info). Both packaging tests install that
one wheel. pip runs with its cache (a second run downloads nothing) and --no-compile (the
bytecode of torch alone takes a minute on 2 cores; Python compiles what it imports anyway).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
SERVE_LOCK = REPO / "requirements-serve.lock"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
PIP_TIMEOUT = 1800  # a first run downloads torch


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path
    source: Path  # the copy of the repository the two were built from


def run(
    cmd: list[str | Path], *, timeout: float = 600, check: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment(kwargs.pop("env", {})),
        **kwargs,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {done.returncode}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def environment(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}
    env.pop("VIRTUAL_ENV", None)
    return env


def pins(lock: Path) -> dict[str, str]:
    """{normalised name: version} of a lock file's `name==version` lines."""
    out = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[normalise(name)] = version.strip()
    return out


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(python: Path) -> dict[str, str]:
    """{normalised name: version} of every distribution in the venv of `python` (pip list,
    without pip/setuptools/wheel); a local version suffix (+cpu) is dropped."""
    listed = json.loads(run([python, "-m", "pip", "list", "--format=json"]).stdout)
    out = {normalise(d["name"]): d["version"].split("+")[0] for d in listed}
    for tool in ("pip", "setuptools", "wheel"):
        out.pop(tool, None)
    return out


PIP_INSTALL = ("-m", "pip", "install", "-q", "--no-compile")


class Background:
    """Everything the packaging tests install, started at once in one background shell (its
    downloads and unpacking are mostly waiting, so they overlap the tests that run meanwhile):
    `python -m build` of a copy of the repository, then, side by side, the fresh venvs named in
    `chains` ({name: [command, ...]}; "{wheel}" in a command is the built wheel).
    `built()` waits for the build, `venv(name)` for a venv; each returns its seconds."""

    def __init__(self, root: Path, chains: dict[str, list[list[str | Path]]]) -> None:
        self.root, self.out = root, root / "out"
        self.source = copy_sources(root / "src")
        q = shlex.quote
        lines = [
            "s=$(date +%s)",
            " ".join(
                q(str(a))
                for a in (sys.executable, "-m", "build", "--outdir", self.out, self.source)
            )
            + " > build.log 2>&1",
            "echo $? $(( $(date +%s) - s )) > build.rc",
            'test "$(cut -d" " -f1 build.rc)" = 0 || exit 1',
        ]
        for name, commands in chains.items():
            steps = " && ".join(
                " ".join(q(str(self.out)) + "/*.whl" if a == "{wheel}" else q(str(a)) for a in cmd)
                for cmd in commands
            )
            lines.append(
                f"( s=$(date +%s); ( {steps} ) > {name}.log 2>&1; "
                f"echo $? $(( $(date +%s) - s )) > {name}.rc ) &"
            )
        lines.append("wait")
        self.process = subprocess.Popen(
            ["sh", "-c", "\n".join(lines)],
            cwd=root,
            env=environment({}),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _wait(self, name: str) -> float:
        rc, deadline = self.root / f"{name}.rc", time.monotonic() + PIP_TIMEOUT
        while not rc.exists() or not rc.read_text().strip():
            if self.process.poll() is not None and not rc.exists():
                raise AssertionError(
                    f"the packaging background job stopped before {name}: " + self._log("build")
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} took over {PIP_TIMEOUT} s: " + self._log(name))
            time.sleep(0.5)
        code, seconds = rc.read_text().split()
        if code != "0":
            raise AssertionError(f"{name} failed (exit {code}): " + self._log(name))
        return float(seconds)

    def _log(self, name: str) -> str:
        log = self.root / f"{name}.log"
        return log.read_text()[-6000:] if log.exists() else "(no log)"

    def built(self) -> float:
        return self._wait("build")

    def venv(self, name: str) -> float:
        return self._wait(name)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def size_mb(folder: Path) -> float:
    """Disk use of a folder in MiB (du -sk: what the install really occupies)."""
    return int(run(["du", "-sk", folder]).stdout.split()[0]) / 1024


def copy_sources(target: Path) -> Path:
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / rel)
    return target
