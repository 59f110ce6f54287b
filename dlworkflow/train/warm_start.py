"""Warm start: begin training from an earlier model's weights instead of the usual
initialisation (`dlw retrain` with `retrain.warm_start`, or `Project.train(init_from=PATH)`).

    warm = resolve(path, model=cfg.model.name, classes=split_info.classes)  # checks first
    model = create_model(...)
    warm.load_into(model)            # strict: every tensor, every shape

PATH is an exported version folder (`models/v<N>/`: metadata.json + weights.safetensors), a
trained run folder (`.dlw/train/run-<N>/`: model.json + model.safetensors), or the weights
file inside either. Weights are read from safetensors only (nothing is unpickled) and checked
against the sha256 recorded beside them. A warm start is possible only into the same network
(registry name) with the same classes in the same order; anything else is a TrainError that
says why, before any data is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.errors import TrainError
from dlworkflow.fileio import read_json, sha256_file
from dlworkflow.models.saving import META_FILE, WEIGHTS_FILE
from dlworkflow.runtime.versions import METADATA_FILE
from dlworkflow.runtime.versions import WEIGHTS_FILE as EXPORTED_WEIGHTS_FILE

if TYPE_CHECKING:
    from torch import nn

EXPORTED_META, EXPORTED_WEIGHTS = METADATA_FILE, EXPORTED_WEIGHTS_FILE  # models/v<N>/
TRAINED_META, TRAINED_WEIGHTS = META_FILE, WEIGHTS_FILE  # a trained run's folder


@dataclass(frozen=True)
class WarmStart:
    """Where the initial weights come from, verified."""

    folder: Path
    weights: Path
    sha256: str
    model: str
    classes: tuple[str, ...]
    version: int | None  # the exported version, None for a trained run folder

    def describe(self) -> str:
        what = f"exported v{self.version}" if self.version is not None else "trained model"
        return f"{what} ({self.weights})"

    def record(self) -> dict[str, Any]:
        """For the ledger, MLflow and model.json."""
        return {
            "folder": str(self.folder),
            "weights": str(self.weights),
            "weights_sha256": self.sha256,
            "model": self.model,
            "version": self.version,
        }

    def load_into(self, model: nn.Module) -> None:
        """Copy the weights into `model` (strict: same tensor names and shapes)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(self.weights))
        except (SafetensorError, OSError) as exc:
            raise _impossible(
                f"{self.weights} cannot be read as safetensors", received=str(exc)[:200]
            ) from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:300]
            raise _impossible(
                f"the weights of {self.describe()} do not fit the {self.model} now configured "
                "(model.params changed the network's shape?)",
                received=detail,
            ) from None


def resolve(path: str | Path, *, model: str, classes: list[str]) -> WarmStart:
    """Check that `path` holds weights for network `model` with `classes`; TrainError if not."""
    folder = Path(path).expanduser()
    if folder.is_file() and folder.suffix == ".safetensors":
        folder = folder.parent
    if not folder.is_dir():
        raise _impossible(f"{path} does not exist", received=str(path))
    if (folder / EXPORTED_META).is_file():
        meta = _meta(folder / EXPORTED_META)
        name, weights = meta.get("model"), folder / EXPORTED_WEIGHTS
        recorded = (meta.get("files") or {}).get(EXPORTED_WEIGHTS)
        version = meta.get("version") if isinstance(meta.get("version"), int) else None
    elif (folder / TRAINED_META).is_file():
        meta = _meta(folder / TRAINED_META)
        name = meta.get("name")
        weights = folder / str(meta.get("weights_file") or TRAINED_WEIGHTS)
        recorded, version = meta.get("weights_sha256"), None
    else:
        raise _impossible(
            f"{folder} holds no model",
            received=", ".join(sorted(p.name for p in folder.iterdir())[:10]) or "an empty folder",
        )
    if not weights.is_file():
        raise _impossible(f"the weights file {weights} is missing", received="none")
    saved = tuple(str(c) for c in meta.get("classes") or ())
    if name != model:
        raise _impossible(
            f"the earlier model is {name!r}, but model.name is {model!r}",
            received=f"model {name!r}",
            fix="train without warm start (retrain.warm_start: false), or set "
            f"model.name: {name} to continue from it",
        )
    if saved != tuple(classes):
        raise _impossible(
            "the classes differ from the earlier model's",
            received=f"earlier {list(saved)[:12]}, now {list(classes)[:12]}",
            fix="train without warm start: a new or renamed class needs a new "
            "head (retrain.warm_start: false)",
        )
    digest = sha256_file(weights)
    if recorded and digest != recorded:
        raise _impossible(
            f"{weights} does not match the sha256 recorded beside it (changed or corrupted)",
            received=f"sha256 {digest[:16]}...",
        )
    return WarmStart(
        folder=folder.resolve(),
        weights=weights.resolve(),
        sha256=digest,
        model=str(name),
        classes=saved,
        version=version,
    )


def _meta(path: Path) -> dict[str, Any]:
    try:
        meta = read_json(path)
    except (OSError, ValueError) as exc:
        raise _impossible(f"{path} cannot be read", received=str(exc)[:200]) from None
    if not isinstance(meta, dict):
        raise _impossible(f"{path} is not a JSON object", received=type(meta).__name__)
    return meta


def _impossible(
    why: str,
    *,
    received: str,
    fix: str = "point the warm start at an exported version (models/v<N>/) of the "
    "same network and classes, or train without it",
) -> TrainError:
    return TrainError(
        f"Warm start impossible: {why}.",
        expected="the weights of the same network (model.name) with the same "
        "classes, as safetensors",
        received=received,
        fix=fix,
    )
