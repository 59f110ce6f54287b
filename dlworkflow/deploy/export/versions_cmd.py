"""`dlw promote VERSION` and `dlw rollback [--to N]`: move the champion pointer (a running
server reloads the new champion)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlworkflow.results import StepResult
from dlworkflow.deploy.runtime import versions as V


@dataclass
class VersionsResult(StepResult):
    action: str
    champion: int | None
    versions: list[dict[str, Any]]

    def title(self) -> str:
        return f"{self.action}: champion is now v{self.champion}"

    def rows(self) -> list[tuple[str, Any]]:
        rows = []
        for m in self.versions:
            mark = " (champion)" if m["version"] == self.champion else ""
            forced = f", FORCED: {m['forced']['reason']}" if m.get("forced") else ""
            rows.append((f"v{m['version']}{mark}", f"{m['model']}, {m['verdict']}{forced}, "
                                                    f"{m['created']}"))
        return rows


def promote(root: Path, version: int) -> VersionsResult:
    V.promote(root, version)
    return VersionsResult("promote", V.champion(root), V.versions(root))


def rollback(root: Path, *, to: int | None = None) -> VersionsResult:
    V.rollback(root, to=to)
    return VersionsResult("rollback", V.champion(root), V.versions(root))
