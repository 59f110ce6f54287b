"""dlw explore on semantic segmentation (builtin:digit-masks): each class's pixel share, mask
coverage per image and sample overlays, instead of 1,250 one-sample "classes"."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from dlworkflow.explore.masks_view import mask_caption, mask_target
from dlworkflow.project import Project
from dlworkflow.store import read_manifest
from dlworkflow.tasks import task_of
from dlworkflow.tasks.masks import parse_label


def _repeats(manifest) -> int:
    """Digits that share a mosaic with another of their class (one class present, twice)."""
    return sum(
        4 - (len(parse_label(label).present()) - 1) for label in manifest["label"].astype(str)
    )


def test_explore_digit_masks_shows_pixel_shares_coverage_and_overlays(tmp_path):
    project = Project.init(tmp_path / "proj", task="semantic-segmentation")
    project.update_config({"explore.backbone": "pixels", "explore.max_embed": 200})
    project.ingest("builtin:digit-masks", progress=False)
    result = project.explore(progress=False)
    assert result.n_samples == 1250 and result.n_classes == 11
    numbers = dict(result.target_rows)
    assert numbers["classes"] == "11"
    coverage = float(numbers["mask coverage (mean)"].rstrip("%")) / 100
    assert 0.05 < coverage < 0.3  # digits' ink >= 128 covers about an eighth of a mosaic
    assert not any("fewer than" in w.text and "classes" in w.text for w in result.warnings)

    html = Path(result.report).read_text(encoding="utf-8")
    masks = html[html.index("3. Masks") :]
    for text in ("share of pixels", "Mask coverage", "Sample overlays", "background"):
        assert text in masks
    manifest = read_manifest(project)
    target = mask_target(manifest, task_of("semantic-segmentation"))
    assert sum(target.pixels.values()) == 1250 * 56 * 56  # every pixel once (none ignored)
    assert list(target.pixels)[0] == "background" and target.images["background"] == 1250
    assert sum(target.images.values()) - 1250 == 4 * 1250 - _repeats(manifest)
    assert f"<td>{target.pixels['background']:,}</td>" in masks
    uri = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", masks).group(1)
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
    coloured = (overlay.max(axis=-1) - overlay.min(axis=-1)) > 40  # MNIST is gray: colour = mask
    assert 0.03 < coloured.mean() < 0.4
    words = mask_caption(manifest["label"].iloc[0])
    assert "coverage" in words and "{" not in words


def test_mask_caption_leaves_other_text_alone():
    assert mask_caption("cat") == "cat"
    assert mask_caption('{"size":[2,1],"classes":["background","7"],"rle":[0,1,1,1]}') == (
        "7 (coverage 50%)"
    )
