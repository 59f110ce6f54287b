"""`dlw monitor` on a real tiny project (sklearn digits, 16x16 PNGs, small_cnn trained on the
first 1,200, tested and exported): with --labels it records the live metric and its interval
beside the champion's test estimate and interval (offline vs online), and the audit judges
that record; every monitor counts non-finite outputs and checks the champion's age."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

import dlworkflow.report.audit  # noqa: F401  (registers the judges)
from dlworkflow.monitor.step import EXIT_ALERT, monitor
from dlworkflow.project import Project
from dlworkflow.runtime import observe
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import load_bundle
from modality_data import helpers
from opening import opening

N_TRAIN = 1200


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Project:
    train = helpers("train/conftest.py")
    project = train.build_digits_project(
        tmp_path_factory.mktemp("online"),
        n=N_TRAIN,
        config={
            **train.FAST_CONFIG,
            "train.epochs": 6,
            "problem.primary_metric": "accuracy",
            "problem.target": 0.5,
        },
    )
    project.train(progress=False)
    project.test()
    project.export()
    return project


def held_out_folder(root: Path, *, inverted: bool, n: int = 300) -> tuple[Path, Path]:
    """n held-out digits (never trained on) as <root>/<label>/h-<i>.png and the labels CSV
    (id = the path in the folder, as `--inputs` names them)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[N_TRAIN : N_TRAIN + n] * (255 / 16)).round().astype(np.uint8)
    images = images.repeat(2, axis=1).repeat(2, axis=2)
    rows = []
    for i, (image, label) in enumerate(zip(images, data.target[N_TRAIN : N_TRAIN + n])):
        path = root / str(label) / f"h-{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - image if inverted else image, mode="L").save(path)
        rows.append(f"{label}/h-{i:04d}.png,{label}\n")
    labels = root.with_name(root.name + "-labels.csv")
    labels.write_text("id,label\n" + "".join(rows))
    return root, labels


def judged(project: Project, test_id: str):
    """The judge's Judgement (points, evidence, next_step, failed) on the project's records."""
    from dlworkflow.report.audit.evidence import Evidence
    from dlworkflow.report.audit.judge import JUDGES

    return JUDGES[test_id](Evidence(project))


def test_labelled_monitor_sets_the_live_metric_beside_the_test_estimate(digits, tmp_path):
    meta = V.read_metadata(digits.root, 1)
    inverted, inverted_labels = held_out_folder(tmp_path / "inverted", inverted=True)
    result = monitor(digits, inputs=inverted, labels=inverted_labels)
    o = digits.ledger.latest("monitor").outputs["online"]
    assert o["version"] == 1 and o["tested"] and o["metric"] == "accuracy" and o["n"] == 300
    assert o["test_value"] == pytest.approx(meta["test_value"])
    assert o["test_interval"] == pytest.approx(meta["test_interval"])
    assert o["live_interval"][0] <= o["live"] <= o["live_interval"][1]
    assert o["live_interval"][1] < meta["test_interval"][0] - 0.05 and o["agree"] is False
    assert result.online == o and "disagree" in dict(result.rows())["live vs test"]
    j = judged(digits, "offline_online_correlate")
    assert j.points == 0 and j.failed and f"{o['live']:.4g}" in j.evidence

    normal, normal_labels = held_out_folder(tmp_path / "normal", inverted=False)
    monitor(digits, inputs=normal, labels=normal_labels)
    o = digits.ledger.latest("monitor").outputs["online"]
    assert o["agree"] is True and o["live"] > 0.6, o
    j = judged(digits, "offline_online_correlate")
    assert j.points == 1.0 and not j.failed
    assert f"{o['live']:.4g} [{o['live_interval'][0]:.4g}, {o['live_interval'][1]:.4g}]" in (
        j.evidence
    )
    html = (digits.paths.reports / "monitor.html").read_text()
    assert "live vs test" in html and "non_finite_outputs" in html and "model_age" in html
    assert opening(html)[1][1].startswith("Live against test: ")  # labels: the live metric


def test_every_monitor_counts_non_finite_outputs(digits):
    from PIL import Image
    from sklearn.datasets import load_digits

    bundle = load_bundle(V.champion_folder(digits.root))
    data = load_digits()
    images = (data.images[N_TRAIN : N_TRAIN + 150] * (255 / 16)).round().astype(np.uint8)
    values = []
    for image in images.repeat(2, axis=1).repeat(2, axis=2):
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG")
        values.append(buffer.getvalue())
    x, summaries = observe.prepare(bundle, values)
    probs, emb = observe.infer(bundle, x)
    probs = probs.copy()
    probs[:3] = np.nan  # a numerically broken model on three inputs
    probs[3, 0] = np.inf
    records = observe.records(bundle, summaries, probs, emb)
    folder = digits.root / ".dlw" / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = monitor(digits)
    check = next(c for c in result.counts if c["name"] == "non_finite_outputs")
    assert check["group"] == "numerics" and check["statistic"] == 4 and check["alert"] is True
    assert result.status == "ALERT" and result.exit_code == EXIT_ALERT
    assert result.n_live == 146 and result.non_finite == 4
    recorded = next(
        c
        for c in digits.ledger.latest("monitor").outputs["checks"]
        if c["name"] == "non_finite_outputs"
    )
    assert recorded == {
        "name": "non_finite_outputs",
        "group": "numerics",
        "statistic": 4.0,
        "p_value": None,
        "effect": pytest.approx(4 / 150),
        "threshold": 0.0,
        "alert": True,
    }
    # the same log without the broken outputs: counted, no alert
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[4:]))
    check = next(c for c in monitor(digits).counts if c["name"] == "non_finite_outputs")
    assert check["statistic"] == 0 and check["alert"] is False


def test_monitor_alerts_on_a_champion_older_than_the_limit(digits, tmp_path):
    normal, _ = held_out_folder(tmp_path / "normal", inverted=False, n=120)
    result = monitor(digits, inputs=normal)
    age = next(c for c in result.counts if c["name"] == "model_age")
    assert age["threshold"] == 90 and 0 <= age["statistic"] < 1 and not age["alert"]
    j = judged(digits, "models_not_too_stale")
    assert j.points == 1.0 and "limit 90 days" in j.evidence
    digits.update_config({"monitor.max_model_age_days": 1e-6})
    try:
        result = monitor(digits, inputs=normal)
        age = next(c for c in result.counts if c["name"] == "model_age")
        assert age["alert"] and result.status == "ALERT"
        assert digits.ledger.latest("monitor").outputs["age"]["alert"] is True
        j = judged(digits, "models_not_too_stale")
        assert j.points == 0 and j.failed
    finally:
        digits.update_config({"monitor.max_model_age_days": 90.0})
    assert math.isfinite(age["statistic"])


def test_the_demo_labels_scanner_b_in_two_disjoint_batches(tmp_path):
    """The MNIST demo's step 9 data: 1,200 digits first, the other 597 later, each with a
    labels CSV whose ids are the paths `--inputs` gives (label = the class folder)."""
    from dlworkflow.demo_plans import demo_plan
    from dlworkflow.monitor.logread import _image_files, read_labels

    plan = demo_plan("image-classification")
    first, later = plan.write_incoming(tmp_path), plan.write_later(tmp_path)
    seen = {}
    for folder, n in ((first, 1200), (later, 597)):
        labels = read_labels(plan.write_labels(folder))
        ids = {f.relative_to(folder).as_posix() for f in _image_files(folder)}
        assert len(labels) == n and set(labels) == ids
        assert all(label == key.split("/")[0] for key, label in labels.items())
        seen[folder.name] = {(folder / key).read_bytes() for key in labels}
    assert first != later and len(seen["scanner-b"] | seen["scanner-b-later"]) > 1700
