"""The generated list of quarantine reasons (docs/gen/reference.py, the Quarantine section of
docs/guide/tasks-and-data.md) holds every reason a real ingest records: bad series of the
four sequence sources and bad audio clips are ingested here, and each reason in
.dlw/quarantine.parquet must match one of the listed templates ({...} filled at run time)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from dlworkflow import Project
from dlworkflow.store import read_quarantine

ROOT = Path(__file__).resolve().parents[2]
SR = 8000


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "dlw_docs_reference", ROOT / "docs/gen/reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    return _reference()


@pytest.fixture(scope="module")
def reasons(reference: ModuleType) -> list[tuple[str, str]]:
    return list(reference.quarantine_reasons())


#: a reason around one decided elsewhere: "line {line}: {problem}", "missing values: {problem}"
PASSED_ON = re.compile(r"\{(problem|reason|cand\.problem|exc\.reason|bad)\}$")


def _pattern(text: str) -> str:
    return ".*?".join(re.escape(p) for p in re.split(r"\{[^{}]*\}", text))


class Templates:
    """The generated reasons as patterns: own reasons, and wrappers around a reason given
    elsewhere (a source's line prefix), whose inner reason must match in turn."""

    def __init__(self, reasons: list[tuple[str, str]]) -> None:
        self.own: list[re.Pattern[str]] = []
        self.wrappers: list[re.Pattern[str]] = []
        for text, _ in reasons:
            passed = PASSED_ON.search(text)
            if passed:
                self.wrappers.append(re.compile(_pattern(text[: passed.start()]) + "(.+)", re.S))
            elif re.search(r"[a-z]", re.sub(r"\{[^{}]*\}", "", text)):
                self.own.append(re.compile(_pattern(text), re.S))

    def match(self, reason: str, depth: int = 0) -> bool:
        if any(p.fullmatch(reason) for p in self.own):
            return True
        if depth > 3:
            return False
        for wrapper in self.wrappers:
            found = wrapper.fullmatch(reason)
            if found and found.group(1) != reason and self.match(found.group(1), depth + 1):
                return True
        return False


@pytest.fixture(scope="module")
def templates(reasons: list[tuple[str, str]]) -> Templates:
    return Templates(reasons)


def _unlisted(project: Project, templates: Templates) -> list[str]:
    reasons = read_quarantine(project)["reason"].tolist()
    assert reasons, "nothing was quarantined: the test data lost its bad samples"
    return [r for r in reasons if not templates.match(r)]


def _ts(path: Path, cases: list[str]) -> None:
    head = (
        "@problemName Tiny\n@timeStamps false\n@missing true\n@univariate false\n"
        "@dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n"
    )
    path.write_text(head + "".join(c + "\n" for c in cases), encoding="utf-8")


def _series_sources(root: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    good = [
        ":".join(",".join(f"{v:.3f}" for v in rng.normal(size=8)) for _ in range(2)) + f":{lab}"
        for lab in ("up", "down") * 3
    ]
    _ts(
        root / "Tiny_TRAIN.ts",
        [
            *good,
            "1,?,?,?,?,2,3:1,2,3,4,5,6,7:up",  # a run of 4 missing steps
            "1,2,3:up",  # one channel of two
            "1,x,3:4,5,6:up",  # not a number
            "1,2,3:4,5,6:sideways",  # undeclared label
            "1,2:3,4,5:down",  # dimensions of different lengths
        ],
    )
    _ts(root / "Tiny_TEST.ts", [*good, "1:2:up", "?,1,2:1,2,3:down"])  # too short; NaN at start
    long = ["id,time,x,y,label,subject"]
    long += [
        f"s{s},{t},{s + t},{t},{'a' if s % 2 else 'b'},p{s}" for s in range(4) for t in range(5)
    ]
    long += ["s8,0,1,2,a,p1", "s8,1,1,2,b,p1", "s9,0,1,2,a,p2", "s9,0,3,4,a,p2"]
    long += ["s10,0,1,2,a,p3", "s10,1,1,2,a,p4", "s11,1,1,x,a,p1", "s11,2,1,2,a,p1"]
    (root / "long.csv").write_text("\n".join(long) + "\n", encoding="utf-8")
    wide = ["id,label,t0,t1,t2"] + [f"w{i},{'a' if i % 2 else 'b'},1,2,3" for i in range(30)]
    wide += ["w1,a,1,2,3", "w40,,1,2,3", "w41,a,1,,", "w42,a,1,1e39,2"]
    (root / "wide.csv").write_text("\n".join(wide) + "\n", encoding="utf-8")
    npy = root / "npy"
    npy.mkdir()
    labels = ["file,label"]
    for i in range(4):
        np.save(npy / f"s{i}.npy", rng.normal(size=(3, 20)).astype(np.float32))
        labels.append(f"s{i}.npy,{'a' if i % 2 else 'b'}")
    np.save(npy / "two.npy", np.zeros((2, 20)))
    np.save(npy / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    np.save(npy / "inf.npy", np.array([1.0, np.inf, 2.0]))
    np.save(npy / "cube.npy", np.zeros((2, 2, 2)))
    np.save(npy / "wide.npy", np.zeros((1001, 3)))
    labels += ["two.npy,a", "obj.npy,b", "inf.npy,b", "cube.npy,a", "wide.npy,a", "gone.npy,a"]
    np.save(npy / "unlabelled.npy", np.zeros((3, 20)))
    labels += ["../long.csv,a", "s0.npy,a", "unlabelled.npy,"]
    (npy / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return [root / "Tiny_TRAIN.ts", root / "long.csv", root / "wide.csv", npy]


def test_every_series_reason_is_listed(tmp_path: Path, templates: Templates) -> None:
    sources = _series_sources(tmp_path)
    for i, source in enumerate(sources):
        project = Project.init(tmp_path / f"p{i}", task="sequence-classification")
        project.ingest(str(source), progress=False)
        assert _unlisted(project, templates) == [], source.name


def test_every_audio_reason_is_listed(tmp_path: Path, templates: Templates) -> None:
    import soundfile as sf

    clips = tmp_path / "clips"
    t = np.arange(SR // 2) / SR
    for cls, f0 in (("low", 220), ("high", 1760)):
        (clips / cls).mkdir(parents=True)
        for i in range(3):
            sf.write(clips / cls / f"{i}.flac", 0.3 * np.sin(2 * np.pi * f0 * (1 + i / 50) * t), SR)
    sf.write(clips / "low" / "silent.wav", np.zeros(SR // 2), SR)
    sf.write(clips / "high" / "clipped.wav", np.clip(2 * np.sin(2 * np.pi * 220 * t), -1, 1), SR)
    (clips / "high" / "tag.wav").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00garbage")
    (clips / "high" / "text.ogg").write_bytes(b"not audio at all")
    (clips / "low" / "empty.wav").write_bytes(b"")
    whole = (clips / "low" / "0.flac").read_bytes()
    sf.write(clips / "low" / "cut.wav", 0.3 * np.sin(2 * np.pi * 220 * t), SR)
    cut = (clips / "low" / "cut.wav").read_bytes()
    (clips / "low" / "cut.wav").write_bytes(cut[: len(cut) // 2])
    (clips / "low" / "cut.flac").write_bytes(whole[: len(whole) // 3])
    project = Project.init(tmp_path / "p", task="audio-classification")
    project.ingest(str(clips), progress=False)
    assert len(read_quarantine(project)) >= 6
    assert _unlisted(project, templates) == []


def test_signal_reasons_are_in_the_generated_table(
    reference: ModuleType, reasons: list[tuple[str, str]]
) -> None:
    listed = {where.split(":")[0] for _, where in reasons}
    for module in (
        "dlworkflow/store/audio.py",
        "dlworkflow/store/series.py",
        "dlworkflow/store/ts_format.py",
        "dlworkflow/data/series_source.py",
        "dlworkflow/data/series_tables.py",
        "dlworkflow/data/series_arrays.py",
    ):
        assert module in listed, module
    html = reference.quarantine_markdown()
    for words in ("silent clip", "clipping:", "missing steps in channel", "too short:"):
        assert words in html, words
