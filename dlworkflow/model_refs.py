"""Where a user's network comes from: `model.name: "package.module:factory"`, or a plug-in
package's entry point in the group `dlworkflow.models`. Light on purpose (no torch): status
uses `source_hash` to tell when the factory's source changed, which makes `train` stale.

A module is imported the usual way (an installed package, or on PYTHONPATH); failing that,
from the folders of the projects opened in this process (a `nets.py` next to dlworkflow.yaml
is found as `nets:factory`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from dlworkflow.errors import ConfigError

ENTRY_POINT_GROUP = "dlworkflow.models"
MODEL_SOURCE = "model_source"  # train's ledger input: sha256 of the factory's source file
FACTORY_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_SEARCH: list[Path] = []  # project folders, most recent first


class FactoryError(ConfigError):
    """`model.name` names a factory that cannot be found, imported or used."""


def is_factory_ref(name: str) -> bool:
    return bool(FACTORY_REF.match(name))


def add_search_dir(folder: Path) -> None:
    """Let `module:factory` refs find modules in this project folder."""
    folder = Path(folder).resolve()
    if folder in _SEARCH:
        _SEARCH.remove(folder)
    _SEARCH.insert(0, folder)


def entry_points() -> dict[str, str]:
    """name -> "module:factory" of the installed plug-ins' models."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def target_of(name: str) -> str | None:
    """The "module:factory" a model name stands for (a ref, or a plug-in's entry point)."""
    if is_factory_ref(name):
        return name
    return entry_points().get(name)


def load_factory(name: str) -> Callable[..., Any]:
    """The factory callable of a ref or entry-point name; FactoryError says what is wrong."""
    target = target_of(name)
    if target is None:
        raise FactoryError(
            f"{name!r} is neither a registered model nor a factory reference.",
            expected='"package.module:factory"',
            received=repr(name),
            fix="write model.name as module:function (`dlw models` lists the registered names)",
        )
    module_name, attr = target.split(":", 1)
    module = _import(module_name, name)
    factory = getattr(module, attr, None)
    if factory is None:
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))[
            :12
        ]
        raise FactoryError(
            f"Module {module_name!r} has no {attr!r}.",
            expected=f"a function {attr}"
            f"(num_outputs, input_spec, **params) in {getattr(module, '__file__', module_name)}",
            received=f"callables: {', '.join(found) or 'none'}",
            fix=f"define {attr} in {module_name}, or correct model.name",
        )
    if not callable(factory):
        raise FactoryError(
            f"{target} is not callable ({type(factory).__name__}).",
            expected="a function or class returning an nn.Module",
            received=type(factory).__name__,
            fix="point model.name at it",
        )
    return factory


def source_hash(name: str) -> str | None:
    """sha256 of the source file that defines the factory (None: not a user factory, or its
    source cannot be read). Found without importing the module itself."""
    target = target_of(name)
    if target is None:
        return None
    path = _source_file(target.split(":", 1)[0])
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _source_file(module_name: str) -> Path | None:
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, "__file__", None):
        return Path(module.__file__)  # type: ignore[arg-type]
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin)
    relative = Path(*module_name.split("."))
    for folder in _SEARCH:
        for candidate in (folder / f"{relative}.py", folder / relative / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _import(module_name: str, name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and not module_name.startswith(exc.name):
            raise _failed(module_name, name, exc) from None  # a dependency of the module
        first = None
    except Exception as exc:  # noqa: BLE001  (the user's module raised while importing)
        raise _failed(module_name, name, exc) from None
    relative = Path(*module_name.split("."))
    for folder in _SEARCH:
        if (folder / f"{relative}.py").is_file() or (folder / relative).is_dir():
            sys.path.insert(0, str(folder))
            try:
                sys.modules.pop(module_name, None)
                return importlib.import_module(module_name)
            except Exception as exc:  # noqa: BLE001
                first = exc
                break
            finally:
                sys.path.remove(str(folder))
    if first is not None:
        raise _failed(module_name, name, first)
    searched = ", ".join(str(f) for f in _SEARCH) or "no project folder"
    raise FactoryError(
        f"No module {module_name!r} for model.name {name!r}.",
        expected=f"an importable module {module_name} (installed, on PYTHONPATH, or a "
        f"{relative}.py in the project folder)",
        received=f"not found (searched sys.path and {searched})",
        fix=f"create {relative}.py next to dlworkflow.yaml, or `pip install -e` the package "
        "that holds it",
    )


def _failed(module_name: str, name: str, exc: BaseException) -> FactoryError:
    return FactoryError(
        f"Importing {module_name!r} (model.name {name!r}) failed.",
        expected="a module that imports cleanly",
        received=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        fix=f"fix the error in {module_name} (run `python -c 'import {module_name}'`)",
    )
