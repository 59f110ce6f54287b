"""The served model: loaded from the champion pointer, swapped atomically on a new champion.

A watcher thread checks the pointer file (runtime.versions.pointer_path) every
`reload_interval_s`; when its mtime/inode changes (promotion, `dlw rollback`) it loads the new
champion beside the old one and then replaces one reference. A request reads that reference
once, so requests in flight finish on the model they started with and none is dropped. A new
champion that cannot be loaded, or that the gate refuses, leaves the old one serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlworkflow.errors import DlwError
from dlworkflow.runtime.bundle import Bundle, load_bundle
from dlworkflow.runtime.versions import champion_folder, pointer_path

log = logging.getLogger("dlworkflow.deploy.serve")


class ServeError(DlwError):
    """The server cannot start: no exported champion, or one the gate refuses."""


def check_servable(metadata: dict[str, Any], *, force_reason: str | None) -> str | None:
    """None when the model may be served; else raise ServeError. With force_reason, a model
    that failed or was never tested is served and the reason is returned (to be shown)."""
    verdict = metadata.get("verdict")
    if verdict == "PASS":
        return None
    forced = metadata.get("forced")
    if isinstance(forced, dict) and forced.get("reason"):
        return f"exported with --force: {forced['reason']}"
    if force_reason and force_reason.strip():
        return force_reason.strip()
    raise ServeError(
        f"Model version {metadata.get('version')} has verdict {verdict or 'UNTESTED'}: only a "
        "model that passed the test against the agreed target is served.",
        expected="verdict PASS (from `dlw test`)",
        received=str(verdict or "UNTESTED"),
        fix="improve the model and run `dlw test`, or serve it anyway with "
        '`dlw serve --force --reason "..."` (the reason is recorded)',
    )


def forced_log_path(root: Path) -> Path:
    return root / ".dlw" / "serve" / "forced.jsonl"


def record_forced(root: Path, bundle: Bundle, reason: str) -> None:
    """Append who served which unpassed model when and why (`dlw serve --force --reason`)."""
    import getpass
    import json

    path = forced_log_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    line = json.dumps(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "by": user,
            "version": bundle.version,
            "verdict": bundle.metadata.get("verdict") or "UNTESTED",
            "reason": reason,
        }
    )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


class ModelHolder:
    def __init__(
        self,
        root: Path,
        *,
        threads: int | None = None,
        force_reason: str | None = None,
        on_reload: Callable[[str, Bundle | None], None] | None = None,
        record: bool = True,
    ) -> None:
        """record: append forced serving to forced.jsonl (one process of several does)."""
        self.root = Path(root)
        self.record = record
        self.threads = threads
        self.force_reason = force_reason
        self.on_reload = on_reload
        self.bundle: Bundle | None = None
        self.loaded_at = ""
        self.forced: str | None = None
        self._stamp = self._pointer_stamp()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> Bundle:
        """Load the current champion now (at start); ServeError when there is none to serve."""
        folder = champion_folder(self.root)
        if folder is None:
            raise ServeError(
                "There is no champion model to serve.",
                expected=f"an exported model and its pointer {pointer_path(self.root)}",
                received="none",
                fix="run `dlw test` and then `dlw export`",
            )
        bundle = load_bundle(folder, threads=self.threads)
        self._swap(bundle)
        return bundle

    def _swap(self, bundle: Bundle) -> None:
        forced = check_servable(bundle.metadata, force_reason=self.force_reason)
        if self.record and forced and forced == (self.force_reason or "").strip():
            record_forced(self.root, bundle, forced)
        self.forced = forced
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.bundle = bundle  # one reference: atomic for every reader

    def _pointer_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = pointer_path(self.root).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def check(self) -> str:
        """Reload when the pointer changed: "unchanged", "reloaded", "same" or "failed"."""
        with self._lock:
            stamp = self._pointer_stamp()
            if stamp == self._stamp:
                return "unchanged"
            self._stamp = stamp
            folder = champion_folder(self.root)
            current = self.bundle
            if folder is None or (current is not None and folder == current.folder):
                return "same"
            bundle: Bundle | None
            try:
                loaded = load_bundle(folder, threads=self.threads)
                self._swap(loaded)
            except DlwError as exc:
                log.warning(
                    "hot reload of %s refused; still serving version %s: %s",
                    folder,
                    getattr(current, "version", None),
                    exc.what,
                )
                outcome, bundle = "failed", None
            else:
                log.warning("hot reload: now serving model version %s", loaded.version)
                outcome, bundle = "reloaded", loaded
        if self.on_reload is not None:
            self.on_reload(outcome, bundle)
        return outcome

    def start_watching(self, interval_s: float) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def watch() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.check()
                except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                    log.exception("hot reload check failed")

        self._thread = threading.Thread(target=watch, name="dlw-model-watcher", daemon=True)
        self._thread.start()

    def stop_watching(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
