"""Errors that say what happened, what was expected, what was received and how to fix it."""

from __future__ import annotations

import functools
import os
import re
from typing import Any

#: `<object at 0x7f3a...>` and bare addresses (0x7f3a2c1b2e80): a memory address tells a
#: reader of an error nothing, and tells an attacker where the heap is.
_ADDRESS = re.compile(r"\s+at\s+0x[0-9a-fA-F]+|\b0x[0-9a-fA-F]{8,16}\b")
#: Characters a path may hold in an error message (it ends at a space, quote or bracket).
_PATH_CHARS = r"[^\s'\"<>()\[\]{},;|`]*"


class DlwError(Exception):
    """Base of every error dlworkflow raises on purpose.

    The CLI prints it without a traceback and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(
        self,
        what: str,
        *,
        expected: str | None = None,
        received: str | None = None,
        fix: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.what = what
        self.expected = expected
        self.received = received
        self.fix = fix
        self.context = dict(context or {})
        super().__init__(self.render())

    def render(self) -> str:
        lines = [self.what]
        for label, value in (
            ("expected", self.expected),
            ("received", self.received),
            ("fix", self.fix),
        ):
            if value:
                lines.append(f"  {label}: {value}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The error as `dlw ... --json` prints it, under the key "error": without memory
        addresses or temporary paths (see `scrub`)."""
        return {
            "type": type(self).__name__,
            "what": scrub(self.what),
            "expected": scrub(self.expected),
            "received": scrub(self.received),
            "fix": scrub(self.fix),
            "context": _scrub_all(self.context),
            "exit_code": self.exit_code,
            "message": scrub(self.render()),
        }


def scrub(text: Any) -> Any:
    """Error text fit to leave the process (an HTTP response, `--json` output): memory
    addresses are dropped (`<object at 0x7f..>` -> `<object>`), and a path under a temporary
    folder keeps only its file name (`/tmp/tmpab12/x.png` -> `<tmp>/.../x.png`). Anything but a
    str is returned as it is."""
    if not isinstance(text, str) or not text:
        return text
    text = _ADDRESS.sub(lambda m: "" if m.group(0)[0].isspace() else "0x…", text)
    return _temp_paths().sub(_temp_placeholder, text)


def _scrub_all(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrub_all(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_all(item) for item in value]
    return value


def _temp_placeholder(match: re.Match[str]) -> str:
    parts = [part for part in re.split(r"[/\\]", match.group("rest")) if part]
    if not parts:
        return "<tmp>"
    return f"<tmp>/{parts[-1]}" if len(parts) == 1 else f"<tmp>/…/{parts[-1]}"


@functools.lru_cache(maxsize=1)
def _temp_paths() -> re.Pattern[str]:
    """The temporary folders of this system (tempfile.gettempdir(), $TMPDIR, /tmp, /var/tmp,
    each also as its real path), longest first, each followed by the rest of its path."""
    import tempfile  # here: `dlw --help` imports this module and needs no temporary folder

    roots = {"/tmp", "/var/tmp", tempfile.gettempdir(), os.environ.get("TMPDIR", "")}
    roots |= {os.path.realpath(root) for root in roots if root}
    folders = sorted({root.rstrip("/\\") for root in roots if root.rstrip("/\\")}, key=len)
    alternatives = "|".join(re.escape(folder) for folder in reversed(folders))
    return re.compile(rf"(?<![\w.~-])(?:{alternatives})(?P<rest>(?:[/\\]{_PATH_CHARS})?)(?![\w.-])")


class ConfigError(DlwError):
    """dlworkflow.yaml is missing, unreadable or does not match the schema."""


class ProjectNotFoundError(DlwError):
    """No dlworkflow.yaml in the given folder."""


class UnknownKeyError(DlwError):
    """A registry key (model, metric, dataset, ...) that does not exist."""


class StepOrderError(DlwError):
    """A step was asked for before the step it depends on has run."""


class DataError(DlwError):
    """A data source cannot be read at all (single bad samples are quarantined instead)."""


class SplitError(DlwError):
    """The split cannot be made or no longer matches its seal."""


class SealedTestSetError(DlwError):
    """Something other than `dlw test` tried to read the sealed test set."""


class CriterionMissingError(DlwError):
    """The problem has no success criterion (primary metric and target)."""


class TrainError(DlwError):
    """Training cannot start or failed in a way the user can fix."""


class LedgerError(DlwError):
    """The ledger cannot be read or written."""


class BusyError(DlwError):
    """Another run of the same command holds the project's lock (unattended runs overlap)."""

    exit_code = 75  # EX_TEMPFAIL: try again later
