"""`dlw promote VERSION` and `dlw rollback [--to N]`: move the champion pointer (a running
server reloads the new champion)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlworkflow.results import StepResult
from dlworkflow.runtime import versions as V


@dataclass
class VersionsResult(StepResult):
    action: str
    champion: int | None
    versions: list[dict[str, Any]]
    history: list[int] | None = None  # earlier champions, newest first

    def title(self) -> str:
        if self.action == "versions":
            return (
                f"exported versions: champion v{self.champion}"
                if self.champion
                else "exported versions: no champion yet"
            )
        return f"{self.action}: champion is now v{self.champion}"

    def rows(self) -> list[tuple[str, Any]]:
        rows = []
        for m in self.versions:
            mark = " (champion)" if m["version"] == self.champion else ""
            forced = f", FORCED: {m['forced']['reason']}" if m.get("forced") else ""
            rows.append(
                (f"v{m['version']}{mark}", f"{m['model']}, {m['verdict']}{forced}, {m['created']}")
            )
        if self.history:
            rows.append(
                (
                    "earlier champions",
                    ", ".join(f"v{v}" for v in self.history)
                    + " (newest first; `dlw rollback [--to N]`)",
                )
            )
        return rows

    def to_json(self) -> dict[str, Any]:
        """`dlw versions --json`: each version's metadata.json as written by `dlw export`."""
        return {
            "action": self.action,
            "champion": self.champion,
            "history": list(self.history or []),
            "versions": self.versions,
        }


def listing(root: Path) -> VersionsResult:
    """Every exported version, the champion and the champions before it."""
    pointer = V.read_pointer(root) or {}
    return VersionsResult(
        "versions",
        V.champion(root),
        V.versions(root),
        history=[int(v) for v in pointer.get("previous", [])],
    )


def promote(root: Path, version: int) -> VersionsResult:
    V.promote(root, version)
    return _after("promote", root)


def rollback(root: Path, *, to: int | None = None) -> VersionsResult:
    V.rollback(root, to=to)
    return _after("rollback", root)


def _after(action: str, root: Path) -> VersionsResult:
    result = listing(root)
    result.action = action
    return result
