"""`dlw promote VERSION` and `dlw rollback [--to N]`: move the champion pointer (a running
server reloads the new champion). Each is a ledger step ("promote", "rollback") that records
who moved it, when, and from which version to which."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlworkflow.fileio import sha256_json
from dlworkflow.results import StepResult
from dlworkflow.runtime import versions as V

if TYPE_CHECKING:
    from dlworkflow.workspace import Workspace


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


def promote(project: Workspace, version: int) -> VersionsResult:
    """Make `version` the champion; the ledger step "promote" records the move."""
    root = project.root
    with project.step("promote", inputs={"champion": _version_text(V.champion(root))}) as run:
        before = V.champion(root)
        V.promote(root, version)
        _record(run, "promote", before, V.champion(root))
    return _after("promote", root)


def rollback(project: Workspace, *, to: int | None = None) -> VersionsResult:
    """The previous champion (or version `to`) again; the ledger step "rollback" records it."""
    root = project.root
    with project.step("rollback", inputs={"champion": _version_text(V.champion(root))}) as run:
        before = V.champion(root)
        V.rollback(root, to=to)
        _record(run, "rollback", before, V.champion(root), asked=to)
    return _after("rollback", root)


def _version_text(version: int | None) -> str | None:
    return None if version is None else str(version)


def _record(
    run: Any, action: str, before: int | None, after: int | None, *, asked: int | None = None
) -> None:
    """The ledger record of a champion move: who, when, from which version to which."""
    record: dict[str, Any] = {
        "action": action,
        "from_version": before,
        "to_version": after,
        "by": _user(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if asked is not None:
        record["asked"] = asked
    run.outputs = {"hash": sha256_json(record), **record}
    run.summary = {
        "headline": f"{action}: champion v{before} -> v{after} by {record['by']}"
        if before is not None
        else f"{action}: champion v{after} by {record['by']}",
        **record,
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _after(action: str, root: Path) -> VersionsResult:
    result = listing(root)
    result.action = action
    return result
