"""The label check never forks the process: cleanlab's multiprocessing Pool forked a
multi-threaded process (torch, MLflow threads) and once deadlocked the test suite."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
from sklearn.datasets import load_digits

from dlworkflow.explore.label_issues import find_label_issues


def test_label_issues_are_found_without_a_process_pool(monkeypatch: pytest.MonkeyPatch):
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a multiprocessing Pool was started")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setattr("os.cpu_count", lambda: 4)  # cleanlab would use a Pool of 4
    digits = load_digits()
    labels = digits.target.astype(str)
    labels[:40] = np.where(labels[:40] == "1", "7", "1")  # 40 planted wrong labels
    found = find_label_issues(digits.data[:600], labels[:600], seed=0)
    assert found.n_checked == 600
    flagged = {c.position for c in found.candidates}
    assert len(flagged & set(range(40))) >= 20  # most planted errors are among the candidates
