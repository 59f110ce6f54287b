"""The deployment page's data: the exported versions (models/v<N>/metadata.json, as `dlw
versions` lists them through Project.versions), the champion, the earlier champions, and the
ledger's record of every promote and rollback. The page's buttons only ask; the confirmation
page says what would change (`confirmation`), and the change itself is Project.promote or
Project.rollback, the methods `dlw promote` and `dlw rollback` call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlworkflow.ui.overview import shown

if TYPE_CHECKING:
    from dlworkflow.project import Project

ACTIONS = ("promote", "rollback")


@dataclass
class VersionView:
    version: int
    champion: bool
    model: str
    created: str
    verdict: str
    forced: str | None  # the recorded --force reason
    servable: bool
    test: str | None  # the test figure export recorded
    parity: list[tuple[str, str]] = field(default_factory=list)
    constraints: list[tuple[str, str]] = field(default_factory=list)
    earlier_champion: bool = False


@dataclass
class Move:
    run_id: int
    action: str
    status: str
    at: str | None
    from_version: Any
    to_version: Any
    by: str
    message: str | None


@dataclass
class Deployment:
    champion: int | None
    history: list[int]
    versions: list[VersionView]
    moves: list[Move]


def deployment(project: Project) -> Deployment:
    from dlworkflow.runtime.versions import servable

    listing = project.versions()
    history = list(listing.history or [])
    views = []
    for m in sorted(listing.versions, key=lambda m: int(m["version"]), reverse=True):
        number = int(m["version"])
        forced = (m.get("forced") or {}).get("reason")
        test = None
        if m.get("test_value") is not None:
            test = f"{m.get('metric')} {shown(m['test_value'])} on {shown(m.get('test_n'))}"
        views.append(
            VersionView(
                version=number,
                champion=number == listing.champion,
                model=str(m.get("model", "")),
                created=str(m.get("created", "")),
                verdict=str(m.get("verdict", "")),
                forced=str(forced) if forced else None,
                servable=servable(m),
                test=test,
                parity=_pairs(m.get("parity")),
                constraints=_constraints(m.get("constraints")),
                earlier_champion=number in history,
            )
        )
    return Deployment(listing.champion, history, views, moves(project))


def _pairs(record: Any) -> list[tuple[str, str]]:
    if not isinstance(record, dict):
        return []
    return [(str(k).replace("_", " "), shown(v)) for k, v in record.items() if v is not None]


def _constraints(record: Any) -> list[tuple[str, str]]:
    """Export's constraint checks: a list of check records, or a mapping."""
    if isinstance(record, dict):
        return _pairs(record)
    if not isinstance(record, list):
        return []
    out = []
    for check in record:
        if isinstance(check, dict):
            name = str(check.get("name") or check.get("constraint") or "constraint")
            rest = ", ".join(f"{k} {shown(v)}" for k, v in check.items() if k != "name")
            out.append((name, rest))
    return out


def moves(project: Project) -> list[Move]:
    """Every promote and rollback the ledger holds, newest first."""
    found = []
    for action in ACTIONS:
        for run in project.ledger.history(action):
            out = run.outputs
            found.append(
                Move(
                    run.id,
                    action,
                    run.status,
                    out.get("at") or run.ended,
                    out.get("from_version"),
                    out.get("to_version"),
                    str(out.get("by", "")),
                    run.message,
                )
            )
    return sorted(found, key=lambda m: m.run_id, reverse=True)


@dataclass
class Confirmation:
    action: str
    version: int | None  # promote: the version; rollback: --to, or None for the previous
    current: int | None
    target: int | None  # the champion afterwards, when it can be told beforehand
    what: str


def confirmation(project: Project, action: str, version: int | None) -> Confirmation:
    listing = project.versions()
    current = listing.champion
    history = list(listing.history or [])
    known = {int(m["version"]) for m in listing.versions}
    if action == "promote":
        target = version
        what = (
            f"v{version} becomes the champion in place of v{current}; v{current} goes first "
            "in the rollback history."
            if current is not None and current != version
            else f"v{version} is the champion already: the pointer stays, the ledger records "
            "the promote."
            if current == version
            else f"v{version} becomes the champion (there is none yet)."
        )
    elif version is not None:
        target = version
        what = f"v{version} becomes the champion again in place of v{current}."
    else:
        target = next((v for v in history if v in known), None)
        what = (
            f"The previous champion, v{target}, becomes the champion again in place of v{current}."
            if target is not None
            else "There is no earlier champion: the rollback will be refused."
        )
    return Confirmation(action, version, current, target, what)
