"""builtin:digit-masks: 1,250 mosaics of real MNIST digits whose masks are derived by
thresholding; ingested as a semantic segmentation source, the masks agree with the digits."""

from __future__ import annotations

import numpy as np

from dlworkflow.datasets import get_builtin
from dlworkflow.datasets.digit_masks import CLASSES
from dlworkflow.project import Project
from dlworkflow.store import read_manifest
from dlworkflow.tasks.masks import label_to_mask
from segmentation_data import mnist_digits


def test_digit_masks_ingests_1250_mosaics_whose_masks_agree_with_the_digits(tmp_path):
    card = get_builtin("digit-masks")
    assert card.task == "semantic-segmentation" and card.n_samples == 1250
    assert "DERIVED" in card.description and "not" in card.description
    project = Project.init(tmp_path / "proj", task="semantic-segmentation")
    result = project.ingest("builtin:digit-masks", progress=False)
    assert result.n_samples == 1250 and result.n_quarantined == 0
    assert sorted(result.class_counts) == sorted(CLASSES) and len(CLASSES) == 11
    assert "DERIVED" in (project.paths.raw / "digit-masks" / "DATASET.md").read_text()

    digits, labels = mnist_digits(5000)
    label_of = {d.tobytes(): int(y) for d, y in zip(digits, labels)}
    manifest = read_manifest(project)
    used = []
    for row in manifest.itertuples():
        from PIL import Image

        image = np.asarray(Image.open(row.path))
        mask = label_to_mask(row.label, CLASSES)
        assert image.shape == mask.shape == (56, 56)
        for r in range(2):
            for c in range(2):
                tile = image[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28]
                part = mask[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28]
                digit = label_of[tile.tobytes()]  # a real MNIST digit, found by its pixels
                used.append(tile.tobytes())
                expected = np.where(tile >= 128, digit + 1, 0)
                np.testing.assert_array_equal(part, expected)
    assert len(set(used)) == len(set(label_of))  # every digit used once
    assert len(used) == 5000
