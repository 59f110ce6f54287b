"""The bearer token: from the config, from DLW_SERVE_TOKEN, or generated once and kept 0600."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dlworkflow.errors import ConfigError
from dlworkflow.fileio import atomic_write_text

ENV_VAR = "DLW_SERVE_TOKEN"
MIN_LENGTH = 16


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # "config", "env", "file" or "generated"
    path: Path | None = None

    @property
    def is_new(self) -> bool:
        return self.source == "generated"


def token_path(root: Path) -> Path:
    return root / ".dlw" / "serve" / "token"


def env_token(name: str, *, fix: str) -> str | None:
    """The token in environment variable `name` (None when unset or blank); ConfigError when
    it is shorter than MIN_LENGTH characters."""
    env = os.environ.get(name, "").strip()
    if env and len(env) < MIN_LENGTH:
        raise ConfigError(
            f"{name} is too short to be a safe token.",
            expected=f"at least {MIN_LENGTH} characters",
            received=f"{len(env)} characters",
            fix=fix,
        )
    return env or None


def resolve_token(root: Path, configured: str | None) -> Token:
    """serve.token, else DLW_SERVE_TOKEN, else the stored token, else a new one (stored 0600)."""
    if configured:
        return Token(configured, "config")
    env = env_token(
        ENV_VAR,
        fix=f"export {ENV_VAR}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
    )
    if env:
        return Token(env, "env")
    path = token_path(root)
    if path.is_file():
        _check_private(path)
        stored = path.read_text(encoding="utf-8").strip()
        if len(stored) >= MIN_LENGTH:
            return Token(stored, "file", path)
    value = secrets.token_urlsafe(32)
    _write_private(path, value)
    return Token(value, "generated", path)


def _write_private(path: Path, value: str) -> None:
    """Atomically, mode 0600 from the start: atomic_write_text's temporary file comes from
    mkstemp (0600), and os.replace keeps its mode (never world-readable, even briefly)."""
    atomic_write_text(path, value + "\n")


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"The stored serve token {path} is readable by other users (mode {mode:o}).",
            expected="mode 600",
            received=f"mode {mode:o}",
            fix=f"run `chmod 600 {path}`, or delete it to have a new token generated",
        )
