"""Screenshots of every `dlw ui` page on the demo project, for docs/guide/ui.md.

    .venv/bin/python docs/gen/ui_shots.py --project DIR   # a demo project as it is
    .venv/bin/python docs/gen/ui_shots.py                 # builds one first (minutes)

docs/gen/steps.py calls take(demo_dir) at the end of its run, on the demo project it built
(after evaluate, explain, tune and the rollback), so the generated docs retake them each
time; this script takes them alone. Without --project it builds the project as bench/ui.py
does (`dlw demo`, `dlw evaluate`, `dlw explain`).

The pages are bench/ui.py's PAGES (one list for the benchmark and the screenshots: a page
added there is timed and shot), less SKIPPED (the health check, the report files and a
thumbnail: not pages of the app). Each is opened in the system Chromium (Playwright, the browser
`make system-deps` installs) on the real `dlw ui` process, logged in with the token URL, at
1280x800; the first screen is saved as docs/guide/img/ui-<page>.png (palette-quantised,
optimised). A page whose images do not all load fails the run (after every screenshot is
written), naming them. The only edit to what the browser shows: the project's temporary
folder is written as `~` (as steps.py does in the recorded output). Stale ui-*.png files
are removed first.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "guide" / "img"
VIEWPORT = {"width": 1280, "height": 800}
COLOURS = 96
SKIPPED = ("/health", "/reports/", "/evaluation/val/image/")  # not pages: JSON, files, images
CHROMIUM = "chromium"

# Shown as ~/ in the pages (a text node's value; CSP does not apply to Playwright's evaluate).
HIDE_FOLDER = """(folder) => {
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    if (n.nodeValue.includes(folder)) n.nodeValue = n.nodeValue.split(folder).join('~');
  }
}"""

#: Loads every image (lazy ones made eager); the src of each that did not load.
BROKEN_IMAGES = """() => Promise.all(Array.from(document.images).map(i => {
  i.loading = 'eager';
  return i.complete ? null : new Promise(done => { i.onload = i.onerror = done; });
})).then(() => Array.from(document.images)
  .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')))"""


def bench_ui() -> ModuleType:
    """bench/ui.py: PAGES, build, addresses, start_ui, login, TOKEN."""
    spec = importlib.util.spec_from_file_location("bench_ui", ROOT / "bench" / "ui.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def save_small(png: bytes, target: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def take(root: Path, *, out: Path = OUT, hide: Path | None = None) -> list[Path]:
    """Screenshot every page of bench/ui.py's PAGES on the project at `root` into `out`;
    `hide`: the folder shown as ~ (default: the project's parent). Returns the files."""
    from playwright.sync_api import sync_playwright

    ui = bench_ui()
    executable = shutil.which(CHROMIUM)
    if executable is None:
        raise SystemExit("the screenshots need chromium: run `make system-deps`")
    root = root.resolve()
    folder = str((hide or root.parent).resolve())
    pages, left_out = ui.addresses(root)
    for reason in left_out:
        print(f"no screenshot: {reason}")
    pages = [(n, a) for n, a in pages if not a.startswith(SKIPPED)]
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("ui-*.png"):
        stale.unlink()
    port = ui.free_port()
    server = ui.start_ui(root, port)
    written: list[Path] = []
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            base = f"http://127.0.0.1:{port}"
            page.goto(f"{base}/?token={ui.TOKEN}")
            for name, address in pages:
                response = page.goto(base + address)
                if response is None or response.status != 200:
                    status = response.status if response else "no response"
                    raise SystemExit(f"{address} answered {status}: no screenshot")
                broken = page.evaluate(BROKEN_IMAGES)
                if broken:
                    problems.append(f"{address}: {len(broken)} image(s) did not load: {broken[:3]}")
                page.evaluate(HIDE_FOLDER, folder)
                target = out / f"ui-{slug(name)}.png"
                save_small(page.screenshot(full_page=False), target)
                written.append(target)
                print(f"  {target.name} ({target.stat().st_size / 1000:.0f} kB)")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    if problems:  # every screenshot is written; the broken ones are named
        raise SystemExit("screenshots of broken pages:\n" + "\n".join(problems))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="a demo project (default: build one)")
    args = parser.parse_args()
    if args.project:
        files = take(args.project)
    else:
        with tempfile.TemporaryDirectory(prefix="dlw-ui-shots-") as tmp:
            files = take(bench_ui().build(Path(tmp)))
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} screenshots, {size / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
