"""Hot reload: promotion and rollback swap the served model without dropping requests."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from servekit import AUTH, b64, export_version


def _wait_for_version(client, version: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/v1/health").json()["model_version"] == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"the server did not switch to version {version}")


def test_promotion_and_rollback_swap_the_model_under_load(make_app, project_root, digit_pngs):
    from dlworkflow.project import Project
    from dlworkflow.runtime.versions import rollback

    project = Project.load(project_root)
    app = make_app(reload_interval_s=0.05)
    body = {"images": [b64(digit_pngs[0])]}
    statuses: list[int] = []
    versions: set[int] = set()
    stop = threading.Event()
    with TestClient(app) as client:

        def hammer() -> None:
            while not stop.is_set():
                r = client.post("/v1/predict", headers=AUTH, json=body)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["model_version"])

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            assert export_version(project, reason="serve tests: a second version") == 2
            _wait_for_version(client, 2)
            info = client.get("/v1/model", headers=AUTH).json()
            assert info["version"] == 2
            assert rollback(project_root) == 1
            _wait_for_version(client, 1)
            time.sleep(0.2)
        finally:
            stop.set()
            for w in workers:
                w.join()
        metrics = client.get("/metrics", headers=AUTH).text
    assert statuses and set(statuses) == {200}, f"dropped: {len(statuses) - statuses.count(200)}"
    assert versions == {1, 2}
    assert 'dlw_model_reloads_total{outcome="reloaded"} 2.0' in metrics


def test_a_broken_new_champion_leaves_the_old_one_serving(make_app, project_root, digit_pngs):
    from dlworkflow.fileio import atomic_write_json
    from dlworkflow.runtime.versions import pointer_path, version_folder

    app = make_app(reload_interval_s=3600)
    broken = version_folder(project_root, 7)
    broken.mkdir(parents=True)
    (broken / "model.onnx").write_bytes(b"not onnx")
    atomic_write_json(
        broken / "metadata.json",
        {"format": 1, "version": 7, "modality": "image", "classes": ["0"], "verdict": "PASS"},
    )
    atomic_write_json(pointer_path(project_root), {"version": 7, "previous": [1]})
    server = app.state.server
    assert server.holder.check() == "failed"
    with TestClient(app) as client:
        r = client.post("/v1/predict", headers=AUTH, json={"images": [b64(digit_pngs[0])]})
        assert r.status_code == 200 and r.json()["model_version"] == 1
