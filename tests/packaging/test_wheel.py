"""The wheel and the sdist that `python -m build` makes, and a fresh venv with that wheel and its
dependencies resolved by pip against requirements.lock (as constraints): `dlw --version`, then
`dlw init`, `dlw define` and `dlw status` in a new project."""

from __future__ import annotations

import email
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pkgkit import LOCK, REPO, VERSION, installed, normalise, pins, run, size_mb

pytestmark = pytest.mark.slow
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _package_files(source: Path) -> set[str]:
    """Every file of the dlworkflow package in the built source tree (sources and data)."""
    return {
        p.relative_to(source).as_posix()
        for p in (source / "dlworkflow").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_wheel_and_sdist_carry_every_file_and_the_metadata(dists):
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"dlworkflow-{VERSION}.dist-info"
        meta = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    package = _package_files(dists.source)
    assert package and {n for n in names if n.startswith("dlworkflow/")} == package
    assert "dlworkflow/py.typed" in package
    assert any(n.startswith(f"{info}/licenses/LICENSE") for n in names)
    assert dists.wheel.name == f"dlworkflow-{VERSION}-py3-none-any.whl"
    assert (meta["Name"], meta["Version"]) == ("dlworkflow", VERSION)
    assert meta["Requires-Python"] == PYPROJECT["requires-python"]
    required = {
        normalise(Requirement(r).name) for r in meta.get_all("Requires-Dist") if "extra ==" not in r
    }
    declared = {normalise(Requirement(d).name) for d in PYPROJECT["dependencies"]}
    assert required == declared
    assert "dlw = dlworkflow.cli:main" in entry_points
    assert "dlworkflow = dlworkflow.cli:main" in entry_points
    with tarfile.open(dists.sdist) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert {"pyproject.toml", "README.md", "LICENSE"} <= members
    assert package <= members


def _torch_closure(python: Path) -> set[str]:
    """Names torch depends on, transitively, in that venv (a platform's CUDA libraries)."""
    script = (
        "import importlib.metadata as m, re\n"
        "from packaging.requirements import Requirement\n"
        "seen, todo = set(), ['torch']\n"
        "while todo:\n"
        "    name = todo.pop()\n"
        "    for r in m.requires(name) or []:\n"
        "        req = Requirement(r)\n"
        "        n = re.sub(r'[-_.]+', '-', req.name).lower()\n"
        "        if (not req.marker or req.marker.evaluate({'extra': ''})) and n not in seen:\n"
        "            seen.add(n); todo.append(n)\n"
        "print('\\n'.join(sorted(seen)))\n"
    )
    return set(run([python, "-c", script]).stdout.split())


def test_the_wheel_installs_with_the_lock_and_dlw_runs(full_venv, tmp_path, capsys):
    folder, python, seconds = full_venv.folder, full_venv.python, full_venv.seconds
    run([python, "-m", "pip", "check"])
    have, locked = installed(python), pins(LOCK)
    assert have.pop("dlworkflow") == VERSION
    assert {n: v for n, v in have.items() if n in locked} == {
        n: v for n, v in locked.items() if n in have
    }  # the lock's versions, every one
    missing = set(locked) - set(have) - {"setuptools"}  # a venv brings its own
    assert not missing, f"in requirements.lock but not needed by the wheel: {sorted(missing)}"
    extra = set(have) - set(locked)
    assert extra <= _torch_closure(python), (
        f"installed but not in requirements.lock: {sorted(extra - _torch_closure(python))}"
    )
    with capsys.disabled():
        print(
            f"\nfull runtime venv from the wheel: {size_mb(folder):.0f} MiB, {len(have)} "
            f"packages, venv + pip install {seconds:.0f} s (in the background)"
        )

    dlw = folder / "bin" / "dlw"
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    assert run([dlw, "--version"], env=env).stdout == f"dlw {VERSION}\n"
    done = run([dlw, "init", "proj"], cwd=tmp_path, env=env)
    assert f"Created {tmp_path / 'proj' / 'dlworkflow.yaml'}" in done.stdout
    done = run(
        [
            dlw,
            "define",
            "-p",
            "proj",
            "--metric",
            "accuracy",
            "--target",
            "0.9",
            "--objective",
            "read handwritten digits",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert "accuracy >= 0.9 on the sealed test set" in done.stdout
    assert "read handwritten digits" in done.stdout
    config = (tmp_path / "proj" / "dlworkflow.yaml").read_text()
    assert "read handwritten digits" in config and "0.9" in config
    done = run([dlw, "status", "-p", "proj"], cwd=tmp_path, env=env)
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]]
        for line in done.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows["1"] == ["define the problem and success", "done"]
    assert [rows[str(k)][1] for k in range(2, 10)] == ["not run"] * 8
    assert "next: dlw ingest SOURCE" in done.stdout
