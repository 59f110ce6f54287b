"""Errors that say what happened, what was expected, what was received and how to fix it."""

from __future__ import annotations

from typing import Any


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
        """The error as `dlw ... --json` prints it, under the key "error"."""
        return {
            "type": type(self).__name__,
            "what": self.what,
            "expected": self.expected,
            "received": self.received,
            "fix": self.fix,
            "context": self.context,
            "exit_code": self.exit_code,
            "message": self.render(),
        }


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
