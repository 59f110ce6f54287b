"""report.html -> report.pdf through a headless Chromium (or Chrome); no browser, no PDF, and a
message that says how to get one."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "the PDF needs chromium: install it (`apt-get install chromium`) and run `dlw report` again"
)
TIMEOUT_S = 120


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def headless_args(browser: str, profile: str) -> list[str]:
    return [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
        "--mute-audio",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]


def render_pdf(html_path: Path, pdf_path: Path, *, browser: str | None = None) -> str | None:
    """Write pdf_path from html_path; None on success, else why it could not be written."""
    browser = browser or find_browser()
    if browser is None:
        return INSTALL_HINT
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{pdf_path.name}.", suffix=".tmp", dir=pdf_path.parent)
    os.close(fd)
    tmp_pdf = Path(name)  # unique: two reports at once never share it (empty: not printed)
    try:
        return _print(browser, html_path, pdf_path, tmp_pdf)
    finally:
        tmp_pdf.unlink(missing_ok=True)


def _print(browser: str, html_path: Path, pdf_path: Path, tmp_pdf: Path) -> str | None:
    with tempfile.TemporaryDirectory(prefix="dlw-chromium-") as profile:
        args = headless_args(browser, profile) + [
            "--no-pdf-header-footer",
            "--print-to-pdf-no-header",
            f"--print-to-pdf={tmp_pdf}",
            html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{browser} could not print the PDF: {exc}"
    if not tmp_pdf.is_file() or tmp_pdf.stat().st_size == 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"{browser} wrote no PDF (exit {done.returncode}): {' / '.join(tail)}"
    tmp_pdf.replace(pdf_path)
    return None
