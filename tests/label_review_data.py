"""A project with real label errors for the label-review tests (importable as
`label_review_data`): real sklearn digits 0, 1 and 2, 40 a class, plus PLANTED real 0s filed
in the folder of class 1, ingested, split and explored, so that `dlw explore`'s own
reports/explore/records/label_issues.csv lists label-issue candidates (the planted ones among
the first). The images stay in ROOT/images, outside the project."""

from __future__ import annotations

from pathlib import Path

from dlworkflow.project import Project
from modality_data import helpers

PLANTED = 8
PLANTED_PREFIX = "1/planted-0-"  # sample ids of the planted errors: real 0s labelled 1


def planted_project(root: Path, *, n_per_class: int = 40) -> Project:
    data = helpers("conftest.py")
    images = data.make_digits_folder(root / "images", n_per_class=n_per_class, classes=(0, 1, 2))
    for k in range(PLANTED):  # digits of the set not among the 40 of class 0
        data.write_png(images / "1" / f"planted-0-{k}.png", data.digit_image(0, 100 + k))
    project = Project.init(root / "proj")
    project.update_config({"train.threads": 2})
    project.ingest(str(images), progress=False)
    project.split()
    project.explore(progress=False)
    return project
