"""Everything the packaging tests install is started in the background as soon as collection
ends (pkgkit.Background): the sdist and the wheel (`python -m build`, once), then side by side
the slim serving venv (requirements-serve.lock + the wheel --no-deps) and the full runtime venv
(the wheel, its dependencies resolved by pip with requirements.lock as constraints). Installing
is mostly waiting on the network and the disk, so it overlaps the rest of the suite; the
fixtures wait for what their test needs."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from pkgkit import LOCK, PIP_INSTALL, SERVE_LOCK, Background, Dists

HERE = Path(__file__).resolve().parent
_JOBS: dict[str, Background] = {}


@dataclass(frozen=True)
class Venv:
    name: str
    folder: Path
    seconds: float  # python -m venv + pip install, in the background

    @property
    def python(self) -> Path:
        return self.folder / "bin" / "python"

    @property
    def dlw(self) -> Path:
        return self.folder / "bin" / "dlw"


def _venv_chains(root: Path, names: set[str]) -> dict[str, list[list[str | Path]]]:
    chains: dict[str, list[list[str | Path]]] = {}
    if "slim_venv" in names:
        python = root / "slim" / "bin" / "python"
        chains["slim"] = [
            [sys.executable, "-m", "venv", root / "slim"],
            [python, *PIP_INSTALL, "-r", SERVE_LOCK],
            [python, "-m", "pip", "check"],  # the lock alone is complete
            [python, *PIP_INSTALL, "--no-deps", "{wheel}"],
        ]
    if "full_venv" in names:
        python = root / "full" / "bin" / "python"
        chains["full"] = [
            [sys.executable, "-m", "venv", root / "full"],
            [python, *PIP_INSTALL, "{wheel}", "-c", LOCK],
        ]
    return chains


def pytest_collection_finish(session: pytest.Session) -> None:
    items = [item for item in session.items if HERE in Path(item.path).parents]
    if not items or session.config.option.collectonly:
        return
    try:
        import build  # noqa: F401
    except ImportError:
        return  # each packaging test fails with the install command (the `background` fixture)
    fixtures = {name for item in items for name in getattr(item, "fixturenames", ())}
    root = Path(tempfile.mkdtemp(prefix="dlw-packaging-"))
    _JOBS["packaging"] = Background(root, _venv_chains(root, fixtures))


def pytest_sessionfinish(session: pytest.Session) -> None:
    job = _JOBS.pop("packaging", None)
    if job is not None:
        job.stop()
        # two venvs are ~50,000 files: removing them takes a minute on a slow disk, so it is
        # left to a detached `rm -rf` instead of holding up the end of the session
        subprocess.Popen(
            ["rm", "-rf", str(job.root)],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@pytest.fixture(scope="session")
def background() -> Background:
    if "packaging" not in _JOBS:
        pytest.fail(
            "the packaging tests need `build` (python -m build): make setup-dev, or "
            "pip install -r requirements.lock -r requirements-dev.lock"
        )
    return _JOBS["packaging"]


@pytest.fixture(scope="session")
def dists(background: Background) -> Dists:
    """The sdist and the wheel of the repository (the wheel is built from the sdist)."""
    seconds = background.built()
    print(f"\npython -m build (sdist, then the wheel from it): {seconds:.0f} s")
    (wheel,), (sdist,) = (list(background.out.glob(p)) for p in ("*.whl", "*.tar.gz"))
    return Dists(wheel=wheel, sdist=sdist, source=background.source)


@pytest.fixture(scope="session")
def slim_venv(background: Background, dists: Dists) -> Venv:
    """requirements-serve.lock with pip's dependency checks (`pip check` passed on it alone),
    then the wheel with --no-deps."""
    return Venv("slim", background.root / "slim", background.venv("slim"))


@pytest.fixture(scope="session")
def full_venv(background: Background, dists: Dists) -> Venv:
    """The wheel and its dependencies, resolved by pip against requirements.lock as
    constraints (torch, mlflow, ...: minutes)."""
    return Venv("full", background.root / "full", background.venv("full"))
