"""Git facts about a project: whether a file (dlworkflow.yaml, the model spec) is committed,
clean, at which commit. One `git status` call answers; git may be absent or the folder in
no repository: then the answer says so, it never raises.

Every git call goes through GIT: a repository's fsmonitor hook is a program from its config,
which dlw must never start (a project folder may be someone else's checkout)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

GIT = ("git", "-c", "core.fsmonitor=false")
TIMEOUT = 5.0

COMMITTED = "committed"  # tracked, the same as in HEAD (nothing staged, nothing changed)
MODIFIED = "modified"  # tracked, with changes not committed (staged or not)
ADDED = "added, not committed"  # staged for the first commit that holds it
UNTRACKED = "untracked"
IGNORED = "ignored by git"
NO_REPOSITORY = "not a git repository"
NO_GIT = "git not installed"


def git(root: Path, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """`git -C root <args>` (fsmonitor off), its output captured as text; OSError when git
    cannot start, subprocess.TimeoutExpired when it hangs."""
    return subprocess.run(  # noqa: S603 (fixed program, arguments as a list)
        [*GIT, "-C", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def file_state(root: Path, name: str) -> dict[str, Any]:
    """{"file", "state", "commit", "clean"} of `name` (relative to root) in the repository
    holding root, from one `git status --porcelain=v2 --branch --ignored` call.

    state: committed, modified, "added, not committed", untracked, "ignored by git",
    "not a git repository", "git not installed", or "git failed: <its message>". commit: HEAD
    (None before the first commit or outside a repository). clean: committed and unchanged,
    the only state that says the file at `commit` is the file that was used."""
    out: dict[str, Any] = {"file": name, "state": NO_REPOSITORY, "commit": None, "clean": False}
    if shutil.which(GIT[0]) is None:
        return {**out, "state": NO_GIT}
    try:
        done = git(root, "status", "--porcelain=v2", "--branch", "--ignored=matching", "--", name)
    except OSError:
        return {**out, "state": NO_GIT}
    except subprocess.SubprocessError as exc:
        return {**out, "state": f"git failed: {type(exc).__name__}"}
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or [""])[-1]
        if "not a git repository" in message:
            return out
        return {**out, "state": f"git failed: {message[:200]}"}
    entries, commit = [], None
    for line in done.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = None if oid == "(initial)" else oid
        elif line and not line.startswith("#"):
            entries.append(line)
    out["commit"] = commit
    out["state"] = _state(entries, commit, exists=(root / name).is_file())
    out["clean"] = out["state"] == COMMITTED
    return out


def _state(entries: list[str], commit: str | None, *, exists: bool) -> str:
    if not entries:
        return COMMITTED if commit and exists else UNTRACKED
    kinds = {line.partition(" ")[0] for line in entries}
    if "!" in kinds:  # (beside "1 D." when it was just removed from the index)
        return IGNORED
    if "?" in kinds:
        return UNTRACKED
    xy = entries[0].partition(" ")[2][:2]
    if xy[:1] == "A":
        return ADDED
    if xy[:1] == "D":  # removed from the index (git rm --cached): no longer tracked
        return UNTRACKED
    return MODIFIED


def committed_text(root: Path, name: str) -> str | None:
    """The text of `name` (relative to root) in HEAD, or None when git cannot give it."""
    try:
        done = git(root, "show", f"HEAD:./{name}")
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


#: Who commits for `dlw demo` (a scripted user), whatever git's user.name/email say; no
#: signing, no hooks (a fresh repository's hooks come from the user's init template).
DEMO_COMMITTER = (
    "-c",
    "user.name=dlw demo",
    "-c",
    "user.email=demo@dlworkflow.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
)


def init_and_commit(root: Path, names: list[str], message: str) -> dict[str, Any]:
    """`git init` in root, then commit `names` (relative to root) as the demo's scripted
    user (DEMO_COMMITTER): {"state": committed | "git not installed" | "git failed: ...",
    "commit": the new HEAD or None}. Four git calls; never raises. For `dlw demo` only:
    dlworkflow never commits a user's files."""
    if shutil.which(GIT[0]) is None:
        return {"state": NO_GIT, "commit": None}
    calls = (
        ("-c", "init.defaultBranch=main", "init", "-q"),
        ("add", "--", *names),
        (*DEMO_COMMITTER, "commit", "-q", "--no-verify", "-m", message, "--", *names),
        ("rev-parse", "HEAD"),
    )
    try:
        for args in calls:
            done = git(root, *args)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or ["no message"])[-1]
                return {"state": f"git failed: {why[:200]}", "commit": None}
    except OSError:
        return {"state": NO_GIT, "commit": None}
    except subprocess.SubprocessError as exc:
        return {"state": f"git failed: {type(exc).__name__}", "commit": None}
    return {"state": COMMITTED, "commit": done.stdout.strip()}
