"""The drift simulation of step 9 on real MNIST: a trained, tested and exported model served by
`dlw serve` on 127.0.0.1; shifted digits (rotated, noisy, inverted) sent through the server
raise alerts, held-out in-distribution digits do not; the false-alarm rate over repeated
in-distribution windows stays under monitor.alpha and every shift is detected."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest
import simkit

from dlworkflow.monitor.drift import run_checks
from dlworkflow.monitor.logread import to_sample
from dlworkflow.monitor.reference import load_reference
from dlworkflow.runtime import observe
from dlworkflow.runtime.bundle import load_bundle
from dlworkflow.runtime.versions import champion_folder
from opening import opening

WINDOW, RUNS, DETECTION_RUNS = 200, 40, 10


@pytest.fixture(scope="module")
def simulation(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    project, _, pool = simkit.build_project(root)
    return project, pool


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def test_shifted_traffic_through_the_server_alerts_and_held_out_traffic_does_not(
    simulation, tmp_path
):
    project, pool = simulation
    conditions = {
        "held-out digits": pool[:300],
        **{name: shift(pool[300:600]) for name, shift in simkit.SHIFTS.items()},
    }
    outcome = {}
    with simkit.served(project.root, tmp_path / "serve.log") as port:
        for name, images in conditions.items():
            since = _now()
            assert simkit.send(port, images) == 300
            time.sleep(0.6)  # the server writes its log every 0.2 s
            result = project.monitor(since=since)
            outcome[name] = result
            assert result.n_live == 300, (name, result.n_live)
    print(
        "\n"
        + "\n".join(
            f"{name:>18}: {r.status}; alerts: "
            + (", ".join(c["name"] for c in r.alerts) if r.alerts else "none")
            for name, r in outcome.items()
        )
    )
    assert outcome["held-out digits"].status == "OK"
    assert outcome["held-out digits"].exit_code == 0
    for name in simkit.SHIFTS:
        assert outcome[name].status == "ALERT" and outcome[name].exit_code == 4, name
    groups = {name: {c["group"] for c in r.checks if c["alert"]} for name, r in outcome.items()}
    assert "embedding" in groups["rotated 45 deg"]
    assert "input" in groups["inverted"]  # brightness moves
    report = (project.root / "reports" / "monitor.html").read_text()
    assert "ALERT" in report and "data:image/png;base64," in report
    tone, (said, evidence, step) = opening(report)  # the last run: an alert
    assert tone == "bad" and said.startswith("ALERT: ") and "dlw retrain --data" in step
    sentences = {c["sentence"] for r in outcome.values() for c in [*r.checks, *r.counts]}
    assert evidence in sentences  # the first alerting check's own sentence
    runs = project.ledger.history("monitor")[-4:]  # every run is recorded in the ledger
    assert [bool(r.summary["alerts"]) for r in runs] == [False, True, True, True]


def _records(bundle, images: np.ndarray) -> list[dict]:
    values = [simkit.png(im) for im in images]
    x, summaries = observe.prepare(bundle, values)
    probs, emb = observe.infer(bundle, x)
    return observe.records(bundle, summaries, probs, emb)


def test_false_alarm_rate_stays_under_alpha_and_every_shift_is_detected(simulation):
    project, pool = simulation
    config = project.config.monitor
    bundle = load_bundle(champion_folder(project.root), threads=2)
    reference = to_sample(load_reference(project, bundle).records)
    held_out = _records(bundle, pool[600:])
    rng = np.random.default_rng(0)
    alarms = 0
    for run in range(RUNS):
        window = [held_out[i] for i in rng.choice(len(held_out), WINDOW, replace=False)]
        drift = run_checks(reference, to_sample(window), config=config, seed=run)
        alarms += any(c.alert for c in drift.checks)
    rate = alarms / RUNS
    detected = {}
    for name, shift in simkit.SHIFTS.items():
        hits = 0
        for run in range(DETECTION_RUNS):
            chosen = pool[600:][rng.choice(len(pool) - 600, WINDOW, replace=False)]
            drift = run_checks(
                reference, to_sample(_records(bundle, shift(chosen))), config=config, seed=run
            )
            hits += any(c.alert for c in drift.checks)
        detected[name] = hits / DETECTION_RUNS
    print(
        f"\nfalse alarms: {alarms}/{RUNS} windows of {WINDOW} held-out digits "
        f"(rate {rate:.3f}, monitor.alpha {config.alpha}); detection: "
        + ", ".join(f"{name} {share:.0%}" for name, share in detected.items())
    )
    # Under alpha = 0.01 the expected count is 0.4; 2 or more would have probability < 7 %.
    assert alarms <= 1
    assert all(share == 1.0 for share in detected.values()), detected
