"""Trained models on disk: `model.safetensors` (weights, never pickled) + `model.json` (what is
needed to rebuild the network and feed it: name, params, classes, its input arguments and
`preprocessing`: images their format and mean/std, text the tokenizer and max_len, tables the
feature encoding, series their channel count, audio the clip settings (store.clips) and the
log-mel front end)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlworkflow.fileio import atomic_write_json, atomic_write_with, read_json, sha256_file
from dlworkflow.models.base import Classifier
from dlworkflow.models.factory import create_model
from dlworkflow.models.meta import ModelMeta
from dlworkflow.models.registry import INPUT_ARGS, MODELS, ModelFileError

WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"
FORMAT_VERSION = 1
REQUIRED = ("name", "params", "num_classes", "classes", "weights_sha256")
#: What each kind of model needs on top (model.json files without "modality" are images).
REQUIRED_BY_MODALITY = {
    "image": ("in_channels", "image_size", "mean", "std"),
    "text": ("vocab_size", "preprocessing"),
    "tabular": ("n_features", "preprocessing"),
    # series: {"modality": "sequence", "channels": C}; audio: the ClipSettings and front end
    "sequence": ("preprocessing",),
    "audio": ("preprocessing",),
}


def save_trained(folder: str | Path, model: Classifier, meta: ModelMeta) -> tuple[Path, str]:
    """Write weights then metadata (the metadata file commits the pair); return (path, sha256).

    `meta` must hold `classes`; the model's spec and preprocessing fill in the rest, and any
    other keys (metrics, run ids) are kept as they are.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    spec = dict(getattr(model, "dlw_spec", {}))
    prep = _plain(dict(model.preprocessing))
    modality = spec.get("modality") or prep.get("modality") or "image"
    full = {**spec, "modality": modality, "num_classes": model.num_classes, "preprocessing": prep}
    if modality == "image":  # flat keys, as model.json files have always had them
        full.update(
            mean=list(prep.get("mean", [])),
            std=list(prep.get("std", [])),
            channels=prep.get("channels"),
            size=prep.get("size"),
        )
    full.update(meta)
    required = _required(modality)
    missing = [k for k in required if k != "weights_sha256" and full.get(k) is None]
    if missing:
        raise ModelFileError(
            f"Cannot save the model: its metadata lacks {', '.join(missing)}.",
            expected=f"meta with {', '.join(required)}",
            received=", ".join(sorted(full)),
            fix="build the model with dlworkflow.models.create_model and pass classes in meta",
        )
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = folder / WEIGHTS_FILE
    atomic_write_with(weights, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    digest = sha256_file(weights)
    full.update(weights_sha256=digest, weights_file=WEIGHTS_FILE, format_version=FORMAT_VERSION)
    atomic_write_json(folder / META_FILE, full)
    return weights, digest


def load_trained(folder: str | Path) -> tuple[Classifier, ModelMeta]:
    """Rebuild the network from model.json and load its verified weights (eval mode)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = _read_meta(folder)
    weights = folder / meta.get("weights_file", WEIGHTS_FILE)
    if not weights.is_file():
        raise ModelFileError(
            f"The weights file {weights} is missing.",
            expected=f"{WEIGHTS_FILE} beside {META_FILE}",
            received="none",
            fix="run `dlw train` again to write a complete model folder",
        )
    actual = sha256_file(weights)
    if actual != meta["weights_sha256"]:
        raise ModelFileError(
            f"The weights in {weights} do not match the hash recorded when they were saved: "
            "the file was changed or corrupted.",
            expected=f"sha256 {meta['weights_sha256'][:16]}...",
            received=f"sha256 {actual[:16]}...",
            fix="restore the original file, or run `dlw train` again to retrain the model",
        )
    model = _rebuild(meta)
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as exc:
        raise ModelFileError(
            f"The weights in {weights} do not fit model {meta['name']!r}.",
            received=str(exc).splitlines()[0],
            fix="run `dlw train` again; the model definition changed",
        ) from None
    model.preprocessing.update(meta.get("preprocessing") or {})
    if meta.get("modality", "image") == "image":
        model.preprocessing.update(mean=list(meta["mean"]), std=list(meta["std"]))
    model.eval()
    return model, meta


def _rebuild(meta: ModelMeta) -> Classifier:
    """The network of model.json, untrained (pretrained weights are not loaded: the saved
    weights replace them)."""
    modality = meta.get("modality", "image")
    raw: dict[str, Any] = dict(meta)
    inputs = {k: raw[k] for k in INPUT_ARGS[modality] if raw.get(k) is not None}
    if "image_size" in inputs:
        inputs["image_size"] = tuple(inputs["image_size"])
    params = dict(meta["params"])
    if "pretrained" in MODELS.get(meta["name"]).defaults():
        params["pretrained"] = False
    model = create_model(meta["name"], num_classes=int(meta["num_classes"]), **inputs, **params)
    model.dlw_spec["params"] = dict(meta["params"])
    return model


def _required(modality: str) -> tuple[str, ...]:
    return REQUIRED + REQUIRED_BY_MODALITY.get(modality, ())


def _plain(value: Any) -> Any:
    """JSON-ready: tuples become lists, all the way down."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _read_meta(folder: Path) -> ModelMeta:
    path = folder / META_FILE
    if not path.is_file():
        raise ModelFileError(
            f"No trained model in {folder}.",
            expected=f"{path}",
            received="none",
            fix="run `dlw train` first",
        )
    try:
        meta = read_json(path)
    except ValueError as exc:
        raise ModelFileError(
            f"{path} is not valid JSON.",
            received=str(exc),
            fix="run `dlw train` again to rewrite the model folder",
        ) from None
    modality = meta.get("modality", "image")
    if modality not in REQUIRED_BY_MODALITY:
        raise ModelFileError(
            f"{path} names an unknown modality {modality!r}.",
            expected=", ".join(REQUIRED_BY_MODALITY),
            received=repr(modality),
            fix="upgrade dlworkflow, or run `dlw train` again",
        )
    required = _required(modality)
    missing = [k for k in required if k not in meta]
    if missing:
        raise ModelFileError(
            f"{path} lacks {', '.join(missing)}.",
            expected=", ".join(required),
            received=", ".join(sorted(meta)),
            fix="run `dlw train` again to rewrite the model folder",
        )
    return meta
