"""Exported model versions and the champion pointer (torch-free).

    <project>/models/v<N>/{model.onnx, weights.safetensors, metadata.json}
    <project>/models/champion.json   {"version": N, "previous": [older champions, newest
                                            first], "updated": ISO time}

`root` is the project root folder (the one with dlworkflow.yaml). A folder without
metadata.json is an export that did not finish and is never listed. The pointer is replaced
atomically, so a server that watches `pointer_path(root)`'s mtime always reads a whole file.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlworkflow.errors import DlwError
from dlworkflow.fileio import atomic_write_json, read_json

METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "weights.safetensors"
TOKENIZER_FILE = "tokenizer.json"  # text models: their WordPiece vocabulary, so serving needs
#                                     no model package (and so no torch)
POINTER_FILE = "champion.json"
_VERSION_DIR = re.compile(r"^v(\d+)$")


class VersionError(DlwError):
    """A model version that does not exist, or a pointer that cannot move as asked."""


def models_dir(root: str | Path) -> Path:
    return Path(root) / "models"  # beside reports/: deliverables (DESIGN.md)


def pointer_path(root: str | Path) -> Path:
    return models_dir(root) / POINTER_FILE


def version_folder(root: str | Path, version: int) -> Path:
    return models_dir(root) / f"v{int(version)}"


def _numbers(root: str | Path) -> list[int]:
    folder = models_dir(root)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _VERSION_DIR.match(child.name)
        if match and child.is_dir():
            found.append(int(match.group(1)))
    return sorted(found)


def next_version(root: str | Path) -> int:
    """One more than the highest v<N> folder (complete or not): numbers are never reused."""
    numbers = _numbers(root)
    return numbers[-1] + 1 if numbers else 1


def read_metadata(root: str | Path, version: int) -> dict[str, Any]:
    path = version_folder(root, version) / METADATA_FILE
    if not path.is_file():
        known = [m["version"] for m in versions(root)]
        raise VersionError(
            f"There is no exported model version {version}.",
            expected="one of " + (", ".join(map(str, known)) or "(none yet)"),
            received=str(version),
            fix="run `dlw export`, or pick a listed version",
        )
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise VersionError(
            f"{path} cannot be read.",
            received=str(exc),
            fix="export the model again with `dlw export`",
        ) from None


def versions(root: str | Path) -> list[dict[str, Any]]:
    """metadata.json of every complete v<N>, by version."""
    out = []
    for number in _numbers(root):
        path = version_folder(root, number) / METADATA_FILE
        if path.is_file():
            try:
                out.append(read_json(path))
            except (OSError, ValueError):
                continue
    return out


def read_pointer(root: str | Path) -> dict[str, Any] | None:
    path = pointer_path(root)
    if not path.is_file():
        return None
    try:
        pointer = read_json(path)
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if not isinstance(pointer, dict) or not isinstance(pointer.get("version"), int):
        return None
    return pointer


def champion(root: str | Path) -> int | None:
    pointer = read_pointer(root)
    return None if pointer is None else int(pointer["version"])


def champion_folder(root: str | Path) -> Path | None:
    number = champion(root)
    if number is None:
        return None
    folder = version_folder(root, number)
    return folder if (folder / METADATA_FILE).is_file() else None


def _write(root: str | Path, version: int, previous: list[int]) -> None:
    atomic_write_json(
        pointer_path(root),
        {
            "version": int(version),
            "previous": [int(v) for v in previous],
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )


def promote(root: str | Path, version: int) -> None:
    """Make `version` the champion; the current champion goes to the front of "previous"."""
    read_metadata(root, version)  # raises VersionError if it does not exist
    pointer = read_pointer(root) or {"version": None, "previous": []}
    current = pointer.get("version")
    previous = [v for v in pointer.get("previous", []) if v != version]
    if current is not None and current != version:
        previous = [current, *[v for v in previous if v != current]]
    _write(root, version, previous)


def rollback(root: str | Path, *, to: int | None = None) -> int:
    """Make an earlier model the champion again; return its version.

    to=None: the previous champion (skipping deleted versions). to=N: exported version N,
    any complete one that passed `dlw test` or was exported with a recorded --force reason;
    the current champion goes to the front of "previous", so the history is kept (and
    `rollback()` afterwards returns to it). N being the champion already changes nothing.
    """
    pointer = read_pointer(root)
    if pointer is None:
        raise VersionError(
            "There is no champion model to roll back from.",
            expected=f"{pointer_path(root)}",
            received="none",
            fix="run `dlw export` (a PASS model becomes the champion)",
        )
    if to is not None:
        return _rollback_to(root, int(to), current=int(pointer["version"]))
    previous = list(pointer.get("previous", []))
    while previous:
        candidate = previous.pop(0)
        if (version_folder(root, candidate) / METADATA_FILE).is_file():
            _write(root, candidate, previous)
            return int(candidate)
    raise VersionError(
        f"Version {pointer['version']} is the only champion there has been: "
        "there is nothing to roll back to.",
        expected='an earlier champion in champion.json\'s "previous"',
        received="none",
        fix="use `dlw promote VERSION` to pick a version",
    )


def servable(metadata: dict[str, Any]) -> bool:
    """A version that may serve: it passed `dlw test`, or was exported with a recorded
    --force reason (never a FAIL without one)."""
    return metadata.get("verdict") == "PASS" or bool((metadata.get("forced") or {}).get("reason"))


def _rollback_to(root: str | Path, version: int, *, current: int) -> int:
    metadata = read_metadata(root, version)  # VersionError for a missing / incomplete one
    if not servable(metadata):
        raise VersionError(
            f"Version {version} may not serve: its test verdict was "
            f"{metadata.get('verdict')} and no forced export was recorded.",
            expected="a version that passed `dlw test`, or one exported with --force --reason",
            received=f"v{version}: verdict {metadata.get('verdict')}",
            fix='pick a version that passed `dlw test` ("verdict" in '
            f"{models_dir(root).name}/v<N>/{METADATA_FILE})",
        )
    if version != current:
        promote(root, version)
    return version
