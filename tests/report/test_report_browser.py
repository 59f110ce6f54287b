"""The report in a real browser: Debian's chromium renders reports/report.html headless; every
image must load and the verdict must be visible on the first screen; the PDF is checked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dlworkflow.report.pdf import find_browser, headless_args
from system_deps import missing_system_package

# Set data attributes on <body> once every image has settled; --dump-dom prints them.
CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var v = document.getElementById('verdict');
  var r = v.getBoundingClientRect(), s = getComputedStyle(v);
  var b = document.body;
  b.setAttribute('data-images', imgs.length);
  b.setAttribute('data-images-loaded', ok.length);
  b.setAttribute('data-verdict-visible', String(r.width > 0 && r.height > 0 &&
      r.bottom <= window.innerHeight && s.visibility === 'visible' && s.display !== 'none' &&
      parseFloat(s.opacity) > 0));
  b.setAttribute('data-verdict-text', v.textContent);
  b.setAttribute('data-checked', 'yes');
});
</script>"""


@pytest.fixture(scope="module")
def browser() -> str:
    """Chromium is a system dependency (`make system-deps`); the tests never install it."""
    found = find_browser()
    if found is None:
        missing_system_package("chromium")
    return found


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*headless_args(browser, str(profile)), "--window-size=1280,1000", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_report_renders_in_chromium(reported, browser: str, tmp_path: Path):
    _, result = reported
    checked = tmp_path / "checked.html"
    html = result.html.read_text(encoding="utf-8")
    # the page's Content-Security-Policy forbids scripts: allow only this inline check, keep
    # the rest of the policy (images must load as data: URIs under it)
    policy = "default-src 'none';"
    assert html.count(policy) == 1
    html = html.replace(policy, policy + " script-src 'unsafe-inline';")
    checked.write_text(html.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    dom = _run(
        browser, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", checked.as_uri()
    )
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body and 'data-checked="yes"' in body[1], dom.stderr[-2000:]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body[1]))
    assert int(attrs["images"]) >= 5
    assert attrs["images-loaded"] == attrs["images"]  # every image loaded
    assert attrs["verdict-visible"] == "true"  # on the first screen, not hidden
    assert attrs["verdict-text"].startswith("PASS: test balanced_accuracy")

    shot = tmp_path / "report.png"
    done = _run(browser, tmp_path / "profile2", f"--screenshot={shot}", result.html.as_uri())
    assert shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 1000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # text and figures, not a blank page


def test_pdf_pages_and_text(reported, browser: str):
    from pypdf import PdfReader

    project, result = reported
    assert result.pdf is not None and result.pdf.is_file(), result.pdf_note
    reader = PdfReader(str(result.pdf))
    assert len(reader.pages) >= 4  # the first screen gets a page of its own, then the rest
    first = reader.pages[0].extract_text()
    test = project.ledger.latest("test").outputs
    assert "PASS: test balanced_accuracy" in " ".join(first.split())
    assert f"{test['value']:.4f}" in first
    assert "read handwritten digits" in first
    text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    for heading in ("The results", "Strengths and limitations", "Appendix: reproducibility"):
        assert heading in text
    assert shutil.which(Path(browser).name)
