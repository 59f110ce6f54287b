"""dlw explore on sequence-classification: the series section (lengths, per-channel statistics,
class-mean curves with bands, sample plots), near-duplicate series, warnings and the ledger's
record; built through the real ingest of builtin:gunpoint, builtin:japanese-vowels and a
folder of .npy arrays with planted problems."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dlworkflow.cli import app
from dlworkflow.datasets.ucr import load_ucr
from dlworkflow.explore import duplicates as dup
from dlworkflow.explore import series_view as sv
from dlworkflow.project import Project


def _section(html: str, title: str) -> str:
    start = html.index(title)
    return html[start : html.index("</section>", start)]


def _manifest(arrays: list[np.ndarray], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(len(arrays))],
            "label": labels,
            "length": [a.shape[1] for a in arrays],
            "channels": [a.shape[0] for a in arrays],
            "content_hash": [f"h{i}" for i in range(len(arrays))],
        }
    )


def test_near_duplicate_series_found_without_false_pairs_and_the_k_d_tree_finds_every_pair():
    train, test = load_ucr("GunPoint")
    arrays = train.series + test.series
    labels = list(train.labels) + list(test.labels)
    rng = np.random.default_rng(0)
    original = arrays[7]
    noisy = sv.resample(original, 140) + rng.normal(0, 0.005, (1, 140))  # resampled + noise
    arrays = [*arrays, noisy.astype(np.float32), arrays[30]]  # and an exact copy of 30
    labels = [*labels, "1" if labels[7] == "2" else "2", labels[30]]  # the copy conflicts
    manifest = _manifest(arrays, labels)
    manifest.loc[len(arrays) - 1, "content_hash"] = "h30"
    read = np.ones(len(arrays), dtype=bool)
    near = sv.series_near_duplicates(manifest, arrays, read)
    assert [g.sample_ids for g in near.groups] == [["s7", "s200"]]  # not the exact copy
    assert near.n_conflicting == 1 and 0 < near.groups[0].gap < sv.NEAR_RMS
    assert "64 steps" in near.method

    vectors = sv.fingerprints(arrays)
    projected = dup.close_vectors(vectors, radius=0.06)  # the k-d tree on PCA projections
    V = np.asarray(vectors, dtype=np.float64)  # every pair, here only, as the reference
    d = np.sqrt(((V[:, None] - V[None, :]) ** 2).sum(axis=-1))
    i, j = np.nonzero(np.triu(d <= 0.06, 1))
    assert len(i) > 20  # GunPoint's closest distinct series are ~0.033-0.06 apart
    assert {tuple(p) for p in projected[0].tolist()} == set(zip(i.tolist(), j.tolist()))
    np.testing.assert_allclose(np.sort(projected[1]), np.sort(d[i, j]), rtol=1e-5)


def test_series_evidence_of_japanese_vowels_varying_lengths_and_twelve_channels():
    train, test = load_ucr("JapaneseVowels")
    arrays, labels = train.series, list(train.labels)
    manifest = _manifest(arrays, labels)
    ev = sv.series_evidence(manifest, arrays, np.ones(len(arrays), bool), per_class=3)
    assert (int(ev.lengths.min()), int(ev.lengths.max())) == (7, 26)
    assert not ev.equal_lengths and ev.channels == {12: 270}
    every = np.concatenate(arrays, axis=1).astype(np.float64)
    assert [s.mean for s in ev.stats] == pytest.approx(every.mean(axis=1).tolist())
    assert [s.maximum for s in ev.stats] == pytest.approx(every.max(axis=1).tolist())
    assert len(ev.curves) == 9 and ev.curves[0].mean.shape == (sv.SHOWN_CHANNELS, ev.curve_steps)
    assert all(
        (c.low <= c.mean + 1e-9).all() and (c.mean <= c.high + 1e-9).all() for c in ev.curves
    )
    assert sum(c.n for c in ev.curves) == 270
    assert all(len(v) == 3 for v in ev.examples.values())
    features = sv.series_features(arrays[:20])
    assert features.X.shape == (20, 12 * sv.FEATURE_STEPS + 6 * 12 + 1)


def test_cli_explore_gunpoint_before_and_after_its_source_split(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["init", "--task", "sequence-classification", "gun"])
    assert done.exit_code == 0, done.output
    monkeypatch.chdir(tmp_path / "gun")
    for args in (["ingest", "builtin:gunpoint"], ["explore"]):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    project = Project.load(tmp_path / "gun")
    html = (project.paths.reports / "eda.html").read_text(encoding="utf-8")
    series = _section(html, "4. Series")
    assert "All 200 series have one length: 150 steps." in series
    assert "Channels: 1 (200 series)" in series
    assert "Class-mean curves" in series and "Sample series per class" in series
    assert len(re.findall(r"data:image/png;base64,", series)) == 2  # curves, samples
    # GunPoint's series are z-normalised one by one: over all steps mean 0, std 1
    row = re.search(r"<td>channel 0</td><td>([^<]+)</td><td>([^<]+)</td>", series)
    assert abs(float(row.group(1))) < 1e-3 and float(row.group(2)) == pytest.approx(1.0, abs=0.01)
    assert "0 pairs" in _section(html, "5. Duplicates")
    assert "series resampled to 32 steps" in _section(html, "6. 2-D map")
    assert re.search(r"candidates among 200 checked", _section(html, "7. Label-issue"))
    record = project.ledger.latest("explore").summary
    assert record["n_samples"] == 200 and record["imbalance_ratio"] == 1.0
    assert record["series"]["n_series"] == 200
    assert record["series"]["length_min"] == record["series"]["length_max"] == 150
    assert record["series"]["channel_stats"][0]["std"] == pytest.approx(1.0, abs=0.01)

    project.update_config({"split.use_source_split": True})  # the archive's 50 / 150
    for args in (["split"], ["explore"]):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    html = (project.paths.reports / "eda.html").read_text(encoding="utf-8")
    assert "All 50 series have one length" in _section(html, "4. Series")
    assert "sealed test set (150 samples) is left out" in _section(html, "2. Overview")
    assert "No duplicates between splits." in _section(html, "10. Cross-split leakage")
    assert project.ledger.latest("explore").summary["series"]["n_series"] == 50


def test_explore_japanese_vowels_states_the_length_range(tmp_path):
    project = Project.init(tmp_path / "jv", task="sequence-classification")
    project.update_config({"explore.max_embed": 300, "explore.label_issues": False})
    project.ingest("builtin:japanese-vowels", progress=False)
    result = project.explore(progress=False)
    assert result.n_samples == 640 and result.n_classes == 9
    series = _section(Path(result.report).read_text(encoding="utf-8"), "4. Series")
    assert "640 series of 7 to 29 steps" in series
    assert "Channels: 12 (640 series)" in series
    assert series.count("<td>channel ") == 12
    assert len(re.findall(r"data:image/png;base64,", series)) == 1 + sv.SHOWN_CHANNELS + 1


def test_explore_npy_folder_flags_duplicates_short_and_flat_series(tmp_path):
    train, _ = load_ucr("BasicMotions")
    folder = tmp_path / "arrays"
    folder.mkdir()
    rows = []
    for i, (a, label) in enumerate(zip(train.series, train.labels)):
        np.save(folder / f"s{i:02d}.npy", a)
        rows.append((f"s{i:02d}.npy", label))
    np.save(folder / "copy.npy", train.series[3])  # exact copy, other class
    rows.append(("copy.npy", next(x for x in train.labels if x != train.labels[3])))
    near = train.series[5] * np.float32(1.001)  # 0.1% louder: a near copy
    np.save(folder / "near.npy", near)
    rows.append(("near.npy", train.labels[5]))
    np.save(folder / "short.npy", train.series[6][:, :12])
    rows.append(("short.npy", train.labels[6]))
    flat = train.series[8].copy()
    flat[2] = 0.5
    np.save(folder / "flat.npy", flat)
    rows.append(("flat.npy", train.labels[8]))
    with open(folder / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("file", "label"), *rows])
    project = Project.init(tmp_path / "bm", task="sequence-classification")
    project.update_config({"explore.label_issues": False})
    project.ingest(str(folder), progress=False)
    result = project.explore(progress=False)
    assert result.n_samples == 44
    assert (result.exact_groups, result.exact_conflicting) == (1, 1)
    assert result.near_pairs == 1 and result.near_conflicting == 0
    lines = [w.line() for w in result.warnings]
    assert any("1 very short series (fewer than 25 steps" in x for x in lines)
    assert any("1 series with a constant channel" in x for x in lines)
    assert any("exact duplicate with conflicting labels" in x for x in lines)
    html = Path(result.report).read_text(encoding="utf-8")
    assert "44 series of 12 to 100 steps" in _section(html, "4. Series")
    duplicates = _section(html, "5. Duplicates")
    assert "RMS difference" in duplicates and "class='plot'" in duplicates  # sparkline tiles
    # BasicMotions' classes differ in level and spread, not in the phase of a motion
    assert "channel&#x27;s mean, std, min, max and step-to-step change, and the length" in (
        _section(html, "6. 2-D map")
    )
    assert "chosen over the shape" in _section(html, "6. 2-D map")


def test_a_length_that_tells_the_class_is_a_warning_and_japanese_vowels_raises_none():
    train, _ = load_ucr("GunPoint")
    labels = list(train.labels)
    arrays = [a if lab == "1" else a[:, :120] for a, lab in zip(train.series, labels)]  # a cut
    ev = sv.series_evidence(_manifest(arrays, labels), arrays, np.ones(len(arrays), bool))
    assert ev.shortcut is not None and ev.shortcut[0] == 1.0
    found = sv.series_warnings(SimpleNamespace(series=ev))
    assert [w.severity for w in found] == ["medium"]
    assert "series length alone tells the class 100%" in found[0].text

    train, test = load_ucr("JapaneseVowels")
    arrays, labels = train.series + test.series, list(train.labels) + list(test.labels)
    ev = sv.series_evidence(_manifest(arrays, labels), arrays, np.ones(len(arrays), bool))
    accuracy, majority = ev.shortcut
    assert majority < accuracy < majority + sv.SHORTCUT_MARGIN  # some, not enough to warn
    assert sv.series_warnings(SimpleNamespace(series=ev)) == []
