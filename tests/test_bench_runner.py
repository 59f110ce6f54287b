"""bench/all.py (make bench-all) and bench/verdict.py: the verdict of each script, the choice
of scripts, a script killed past its time. No benchmark runs here (no timed assertion)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


runner = _load("all")
verdict = _load("verdict")


def test_judge_reads_the_exit_code_and_the_verdict_lines() -> None:
    met = ["x", "MET: a 1, goal <= 2", "conditions: ..."]
    assert runner.judge(0, met) == ("MET", "MET: a 1, goal <= 2")
    both = ["MET: a 1, goal <= 2", "NOT MET: b 3, goal <= 2"]
    state, key = runner.judge(1, both)
    assert state == "NOT MET" and key.startswith("NOT MET: b 3") and "1 not met" in key
    assert runner.judge(1, ["Traceback", "ValueError: boom"]) == (
        "ERROR (exit 1, no verdict)",
        "ValueError: boom",
    )
    assert runner.judge(0, ["done"])[0] == "ERROR (exit 0, no verdict)"
    assert runner.judge(None, met)[0] == "TIMEOUT"


def test_select_only_skip_and_unknown_names() -> None:
    names = [b.name for b in runner.select("serve,gpu", None)]
    assert names == ["serve", "gpu"]
    assert "gpu" not in [b.name for b in runner.select(None, "gpu")]
    with pytest.raises(SystemExit, match="unknown benchmark"):
        runner.select("no_such_bench", None)


def test_every_bench_script_is_in_the_table() -> None:
    assert runner.unlisted() == []


def test_the_cpu_budgets_fit_bench_alls_total() -> None:
    cpu = [b.budget for b in runner.BENCHES if not b.needs_cuda]
    assert all(budget > 0 for budget in cpu)
    assert sum(cpu) <= runner.BUDGET_MIN + 1e-9


def test_stream_returns_the_exit_code_and_kills_a_script_past_its_time(tmp_path: Path) -> None:
    code, lines = runner.stream(
        [sys.executable, "-c", "print('NOT MET: x'); raise SystemExit(1)"], tmp_path / "a", 60
    )
    assert (code, lines) == (1, ["NOT MET: x"])
    code, _ = runner.stream(
        [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "b", 0.5
    )
    assert code is None


def test_goal_ops_and_finish_exit(capsys: pytest.CaptureFixture[str]) -> None:
    assert verdict.Goal("g", 0.1, ">", 0).met and not verdict.Goal("g", 0.0, ">", 0).met
    assert not verdict.Goal("g", None, "<=", 1).met
    with pytest.raises(ValueError, match="op"):
        verdict.Goal("g", 1, "==", 1)
    verdict.finish([verdict.Goal("fast", 1.0, "<=", 1.03)])  # returns: met
    with pytest.raises(SystemExit) as stop:
        verdict.finish([verdict.Goal("slow", 2.0, "<=", 1.03)])
    assert stop.value.code == 1
    out = capsys.readouterr().out
    assert "MET: fast 1, goal <= 1.03" in out and "NOT MET: slow 2" in out
