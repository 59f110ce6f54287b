"""`dlw monitor` on a real tiny project: sklearn digits (16x16 PNGs), small_cnn trained on the
first 1,200 digits, tested and exported. The prediction log is written with
`observe.records` (exactly what the server logs) from held-out digits, unchanged or shifted
(inverted, rotated, noisy); the monitor must stay quiet on the former and alert on the
latter."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from dlworkflow.errors import BusyError
from dlworkflow.fileio import run_lock
from dlworkflow.monitor.logread import read_log, to_sample
from dlworkflow.monitor.step import EXIT_ALERT, EXIT_OK, MonitorError, monitor
from dlworkflow.project import Project
from dlworkflow.runtime import observe
from dlworkflow.runtime import versions as V
from dlworkflow.runtime.bundle import load_bundle
from modality_data import helpers

N_TRAIN = 1200  # digits 0..1199 form the project; 1200..1796 are held out
START = datetime(2026, 1, 1, tzinfo=UTC)


def _train_conftest():
    return helpers("train/conftest.py")


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Trained (6 epochs), tested and exported once for the module (~15 s)."""
    train = _train_conftest()
    project = train.build_digits_project(
        tmp_path_factory.mktemp("monitor"),
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


@pytest.fixture(scope="module")
def bundle(digits):
    return load_bundle(V.champion_folder(digits.root))


def held_out(n: int, *, kind: str = "none", seed: int = 0) -> tuple[list[bytes], list[str]]:
    """`n` held-out real digits as PNG bytes (16x16, as trained), optionally shifted."""
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images[N_TRAIN:] * (255 / 16)).round().astype(np.uint8)
    images = images.repeat(2, axis=1).repeat(2, axis=2)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(images), size=n, replace=False)
    out = []
    for i in pick:
        image = images[i]
        if kind == "inverted":
            image = 255 - image
        elif kind == "rotated":
            angle = rng.uniform(35, 60) * rng.choice([-1, 1])
            image = np.asarray(Image.fromarray(image).rotate(angle, resample=Image.BILINEAR))
        elif kind == "noisy":
            image = np.clip(image + rng.normal(0, 70, image.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out, [str(int(t)) for t in data.target[N_TRAIN:][pick]]


def log_records(
    bundle, values: list[bytes], *, start: datetime = START, version: int | None = None
) -> list[dict]:
    """The records the server would log for `values`, one a minute from `start`."""
    x, summaries = observe.prepare(bundle, values)
    probs, emb = observe.infer(bundle, x)
    records = observe.records(bundle, summaries, probs, emb)
    for k, record in enumerate(records):
        record["ts"] = (start + timedelta(minutes=k)).isoformat(timespec="milliseconds")
        if version is not None:
            record["model_version"] = version
    return records


def write_log(
    project: Project, records: list[dict], *, name: str = "predictions.jsonl", clear: bool = True
) -> Path:
    folder = project.root / ".dlw" / "serve"
    folder.mkdir(parents=True, exist_ok=True)
    if clear:
        for old in folder.glob("predictions*.jsonl*"):
            old.unlink()
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def labels_csv(path: Path, ids: list[str], labels: list[str]) -> Path:
    path.write_text("id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels)))
    return path


# ---- the verdicts -------------------------------------------------------------------------
def test_in_distribution_traffic_is_ok_and_writes_the_report(digits, bundle, tmp_path):
    values, truth = held_out(400, seed=1)
    records = log_records(bundle, values)
    write_log(digits, records)
    result = monitor(
        digits, labels=labels_csv(tmp_path / "l.csv", [r["id"] for r in records], truth)
    )
    assert result.status == "OK" and result.exit_code == EXIT_OK, result.rows()
    assert result.n_live == 400 and result.labelled == 400
    groups = {c["group"] for c in result.checks}
    assert groups == {"input", "embedding", "prediction", "confidence", "ood", "performance"}
    assert result.m == len(result.checks) and result.level == pytest.approx(0.01 / result.m)
    html = result.report.read_text()
    assert "OK" in html and "<img src='data:image/png;base64," in html
    assert "src='http" not in html and "<script" not in html
    saved = json.loads(result.json_path.read_text())
    assert saved["status"] == "OK" and saved["exit_code"] == 0 and len(saved["checks"]) == result.m
    record = digits.ledger.latest("monitor")
    assert record.inputs == {"champion": str(bundle.version)}
    assert record.summary["alerts"] == 0 and record.summary["n"] == 400


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("inverted", {"brightness", "embedding MMD", "out-of-distribution rate"}),
        ("rotated", {"embedding MMD", "out-of-distribution rate"}),
        ("noisy", {"contrast", "embedding MMD", "out-of-distribution rate"}),
    ],
)
def test_shifted_digits_alert(digits, bundle, kind, expected):
    values, _ = held_out(300, kind=kind, seed=2)
    write_log(digits, log_records(bundle, values))
    result = monitor(digits, write=False)
    assert result.status == "ALERT" and result.exit_code == EXIT_ALERT
    alerted = {c["name"] for c in result.alerts}
    assert expected <= alerted, result.rows()
    assert result.report is None  # write=False
    assert all(c["sentence"].endswith("ALERT.") for c in result.alerts)


def test_live_accuracy_drop_alerts_with_labels(digits, bundle, tmp_path):
    values, truth = held_out(300, kind="rotated", seed=3)
    records = log_records(bundle, values)
    write_log(digits, records)
    result = monitor(
        digits,
        labels=labels_csv(tmp_path / "l.csv", [r["id"] for r in records], truth),
        write=False,
    )
    [performance] = [c for c in result.checks if c["group"] == "performance"]
    assert performance["alert"]
    assert performance["details"]["interval"][1] < performance["details"]["floor"]
    assert performance["reference"] == pytest.approx(bundle.metadata["test_value"])


def test_too_few_predictions_is_not_enough_data(digits, bundle):
    values, _ = held_out(300, kind="inverted", seed=4)
    write_log(digits, log_records(bundle, values))
    result = monitor(digits, window=50, write=False)
    assert result.status == "NOT ENOUGH DATA" and result.exit_code == EXIT_OK
    assert result.checks == [] and result.n_live == 50
    assert "min_samples" in result.notes[0]


def test_inputs_folder_runs_through_the_champion(digits, tmp_path):
    values, truth = held_out(200, seed=5)
    folder = tmp_path / "recent"
    folder.mkdir()
    for k, data in enumerate(values):
        (folder / f"img{k:03d}.png").write_bytes(data)
    (folder / "broken.png").write_bytes(b"not an image")
    labels = labels_csv(tmp_path / "l.csv", [f"img{k:03d}.png" for k in range(200)], truth)
    result = monitor(digits, inputs=folder, labels=labels, write=False)
    assert result.status == "OK", result.rows()
    assert result.n_live == 200 and result.labelled == 200 and result.skipped == 1
    assert result.source.startswith("--inputs")


# ---- the reference ------------------------------------------------------------------------
def test_reference_is_the_validation_split_cached_per_version_and_split(digits, bundle):
    from dlworkflow.monitor.reference import load_reference
    from dlworkflow.store import load_split, read_split_info

    first = load_reference(digits, bundle)
    again = load_reference(digits, bundle)
    assert not again.built and again.records == first.records
    split_hash = read_split_info(digits).hash
    assert first.path.name == f"reference-v{bundle.version}-{split_hash[:12]}.jsonl"
    val = set(load_split(digits, "val")["sample_id"])
    assert {r["id"] for r in first.records} == val  # all of validation (under the cap)
    assert all(
        r["model_version"] == bundle.version and len(r["emb"]) == observe.EMBED_DIMS
        for r in first.records
    )
    meta = json.loads(first.path.with_suffix(".json").read_text())
    meta["reference_samples"] = 1  # a different cap: the cache no longer matches
    first.path.with_suffix(".json").write_text(json.dumps(meta))
    rebuilt = load_reference(digits, bundle)
    assert rebuilt.built and len(rebuilt.records) == len(val)


# ---- the log ------------------------------------------------------------------------------
def test_log_rotations_in_time_order_malformed_lines_and_other_versions(digits, bundle):
    values, _ = held_out(30, seed=6)
    old = log_records(bundle, values[:10], start=START)
    mid = log_records(bundle, values[10:20], start=START + timedelta(hours=1))
    new = log_records(bundle, values[20:], start=START + timedelta(hours=2))
    new[0]["model_version"] = bundle.version + 7
    write_log(digits, old, name="predictions.jsonl.2")
    write_log(digits, mid, name="predictions.jsonl.1", clear=False)
    path = write_log(digits, new, clear=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"ts": "torn line\n[1, 2]\n{"ts": "2026-01-01", "label": 3}\n')
    log = read_log(digits.root, version=bundle.version)
    assert log.skipped == 3 and log.other_versions == {bundle.version + 7: 1}
    assert [r["id"] for r in log.records] == [r["id"] for r in old + mid + new[1:]]
    since = read_log(
        digits.root, version=bundle.version, since=(START + timedelta(hours=1)).timestamp()
    )
    assert [r["id"] for r in since.records] == [r["id"] for r in mid + new[1:]]
    newest = read_log(digits.root, version=bundle.version, window=12)
    assert [r["id"] for r in newest.records] == [r["id"] for r in mid[-3:] + new[1:]]
    sample = to_sample(log.records)
    assert sample.emb.shape == (29, observe.EMBED_DIMS) and sample.kind == "image"
    assert set(sample.features) == {"width", "height", "mean", "std"}  # gray: no channels


# ---- refusals, the lock, the webhook ------------------------------------------------------
def test_refuses_without_a_champion_or_without_data(tmp_path, digits):
    bare = Project.init(tmp_path / "bare")
    with pytest.raises(MonitorError, match="no champion"):
        monitor(bare)
    for old in (digits.root / ".dlw" / "serve").glob("predictions*.jsonl*"):
        old.unlink()
    with pytest.raises(MonitorError, match="no prediction log and no --inputs"):
        monitor(digits)


def test_a_second_run_is_refused_while_one_holds_the_lock(digits, bundle):
    values, _ = held_out(120, seed=7)
    write_log(digits, log_records(bundle, values))
    with (
        run_lock(digits.paths.state / "locks" / "monitor.lock", what="dlw monitor"),
        pytest.raises(BusyError) as caught,
    ):
        monitor(digits, write=False)
    assert caught.value.exit_code == 75
    assert monitor(digits, write=False).status == "OK"  # free again


def test_alert_is_posted_and_a_failed_post_keeps_the_alert_exit_code(digits, bundle):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        values, _ = held_out(200, kind="inverted", seed=8)
        write_log(digits, log_records(bundle, values))
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        result = monitor(digits, webhook=url)
        assert result.exit_code == EXIT_ALERT and result.webhook["ok"]
        [alert] = received
        assert alert["model_version"] == bundle.version and alert["status"] == "ALERT"
        assert {c["name"] for c in alert["failed_checks"]} == {c["name"] for c in result.alerts}
        assert alert["report"] == str(result.report)
        assert json.loads(result.json_path.read_text())["webhook"]["ok"] is True
    finally:
        server.shutdown()
        server.server_close()
    failed = monitor(digits, webhook=url, write=False)  # nobody listens any more
    assert failed.exit_code == EXIT_ALERT and failed.webhook["ok"] is False
    assert any("webhook failed" in note for note in failed.notes)


# ---- a table: the real feature columns of --inputs are compared too -----------------------
def test_tabular_inputs_compare_every_feature_column(tmp_path):
    from modality_data import mixed_cancer_table, trained_project

    source, table = mixed_cancer_table(tmp_path)
    project = trained_project(
        tmp_path / "table",
        task="tabular-classification",
        source=source,
        config={"model.name": "mlp", "model.params": {"hidden": [16]}, "monitor.min_samples": 50},
    )
    project.promote(project.export(force=True, reason="monitor test").version)
    features = [c for c in table.columns if c != "label"]
    rows = table[features].sample(200, random_state=1).reset_index(drop=True)
    rows.to_csv(tmp_path / "recent.csv", index=False)
    calm = monitor(project, inputs=tmp_path / "recent.csv", write=False)
    assert calm.status == "OK", calm.rows()
    names = {c["name"] for c in calm.checks if c["group"] == "input"}
    assert {"feature 'mean radius'", "feature 'size band'", "missing values"} <= names
    assert calm.m == len(features) + 2 + 4  # columns, fields/missing, 4 more groups

    shifted = rows.assign(**{"mean radius": rows["mean radius"] * 1.5, "size band": "huge"})
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    alert = monitor(project, inputs=tmp_path / "shifted.csv", write=False)
    assert alert.status == "ALERT"
    assert {"feature 'mean radius'", "feature 'size band'"} <= {c["name"] for c in alert.alerts}
