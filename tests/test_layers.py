"""The layering of DESIGN.md, enforced by import-linter (contracts in .importlinter)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is not installed (it is in requirements.lock)"
    out = subprocess.run(
        [exe, "--config", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 3 kept, 0 broken" in out.stdout


def test_the_contracts_catch_a_forbidden_import(tmp_path: Path):
    """A copy of the package where training imports the sealed-test reader must fail."""
    copy = tmp_path / "dlworkflow"
    shutil.copytree(ROOT / "dlworkflow", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "train" / "__init__.py", "a") as handle:
        handle.write("\nimport dlworkflow.store.sealed  # noqa\n")
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    out = subprocess.run(
        [exe, "--config", str(ROOT / ".importlinter")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode != 0
    assert (
        "Only evaluate and explore --include-test may read the sealed test set BROKEN" in out.stdout
    )
