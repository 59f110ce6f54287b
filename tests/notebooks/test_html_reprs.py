"""Every object the public Project methods return renders as HTML in a notebook
(`_repr_html_`): well-formed, with the key numbers, and figures inlined as data: URIs.

One real small workflow on builtin:digits (define -> ingest -> explore -> split -> train,
1 epoch -> evaluate -> test -> export), then predict, promote, rollback, lr_find,
augment_preview and status on the same project.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dlworkflow.project import Project

VOID = {"img", "br", "hr", "meta", "link", "input", "col", "wbr", "source", "area"}


class Checker(HTMLParser):
    """Records tags, img sources and text; fails on a closing tag that does not match."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(obj: object) -> Checker:
    assert hasattr(obj, "_repr_html_"), f"{type(obj).__name__} has no _repr_html_"
    markup = obj._repr_html_()
    assert isinstance(markup, str) and markup.strip(), type(obj).__name__
    checker = Checker()
    checker.feed(markup)
    checker.close()
    assert not checker.errors, (type(obj).__name__, checker.errors)
    assert not checker.stack, (type(obj).__name__, "left open", checker.stack)
    return checker


def text_of(checker: Checker) -> str:
    return re.sub(r"\s+", " ", "".join(checker.text))


def assert_png_uris(checker: Checker, at_least: int) -> None:
    uris = [src for src in checker.images if src.startswith("data:image/png;base64,")]
    assert len(uris) >= at_least, checker.images
    assert all(len(src) > 200 for src in uris)  # a real image, not an empty URI
    assert all(src.startswith("data:") for src in checker.images)  # nothing links to a file


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("html") / "digits"
    project = Project.init(root, name="digits-html")
    project.update_config(
        {
            "train.epochs": 1,
            "train.threads": 2,
            "model.params": {"channels": [8, 16], "convs_per_block": 1},
        }
    )
    results: dict[str, object] = {"project": project}
    results["define"] = project.define(
        metric="accuracy", target=0.5, objective="read handwritten digits"
    )
    results["ingest"] = project.ingest("builtin:digits", progress=False)
    results["explore"] = project.explore(progress=False)
    results["split"] = project.split()
    results["train"] = project.train(progress=False)
    results["evaluate"] = project.evaluate()
    results["test"] = project.test()
    results["export"] = project.export()
    return results


def test_define_ingest_split(flow):
    text = text_of(parse(flow["define"]))
    assert "accuracy >= 0.5" in text and "read handwritten digits" in text
    text = text_of(parse(flow["ingest"]))
    assert "builtin:digits" in text and "1,797 in 10 classes" in text
    split = flow["split"]
    text = text_of(parse(split))
    for name, n in split.counts.items():
        assert f"{n:,}" in text and name in text
    assert split.seal_hash[:12] in text


def test_explore_inlines_the_class_chart(flow):
    result = flow["explore"]
    checker = parse(result)
    text = text_of(checker)
    assert "1,797 in 10 classes" in text and result.headline in text
    assert_png_uris(checker, 1)


def test_train_shows_its_numbers_and_curves(flow):
    result = flow["train"]
    checker = parse(result)
    text = text_of(checker)
    assert f"{result.best_metric:.4f}" in text and f"{result.parameters:,}" in text
    assert_png_uris(checker, 1)  # training curves


def test_evaluate_and_test_inline_their_figures(flow):
    for key in ("evaluate", "test"):
        result = flow[key]
        checker = parse(result)
        text = text_of(checker)
        m = result.report["metrics"]["accuracy"]
        assert f"{m['value']:.4f}" in text and f"{m['low']:.4f}" in text, key
        # confusion matrix, reliability diagram, most confident mistakes
        assert_png_uris(checker, 3)
        assert {"figure", "figcaption", "table"} <= checker.tags
        assert "confusion matrix" in text
    verdict = flow["test"].verdict
    assert verdict.verdict in ("PASS", "FAIL")
    assert verdict.sentence() in text_of(parse(flow["test"]))


def test_export_status_and_versions(flow):
    project = flow["project"]
    export = flow["export"]
    text = text_of(parse(export))
    assert f"v{export.version}" in text and f"{export.onnx_mb:.2f} MB" in text
    assert "agreement" in text

    status = project.status()
    checker = parse(status)
    text = text_of(checker)
    assert checker.tags >= {"table", "caption", "code"}
    assert str(project.root) in text and "read 1 time(s)" in text
    for step in status.steps:
        assert step.title in text

    second = project.export()  # a PASS export becomes the champion
    assert f"v{second.version} (served by" in text_of(parse(second))
    promoted = project.promote(export.version)
    assert f"v{export.version} (champion)" in text_of(parse(promoted))
    rolled = project.rollback()
    assert f"v{second.version} (champion)" in text_of(parse(rolled))
    listed = text_of(parse(project.versions()))
    assert f"v{second.version} (champion)" in listed and f"v{export.version}" in listed
    promoted = project.promote(export.version)  # v2 becomes an earlier champion
    assert f"earlier championsv{second.version} (newest" in text_of(parse(project.versions()))
    project.rollback()


def test_predict_lr_find_and_augment_preview(flow, tmp_path: Path):
    project = flow["project"]
    images = sorted((project.paths.raw).rglob("*.png"))[:5]
    assert images, "builtin:digits is materialised as PNG files"
    predicted = project.predict(images, out=tmp_path / "predictions.csv")
    text = text_of(parse(predicted))
    assert "predictions.csv" in text and "5" in text

    found = project.lr_find(steps=20, progress=False)
    checker = parse(found)
    assert f"{found.suggestion:.2e}" in text_of(checker)
    assert_png_uris(checker, 1)

    project.update_config({"augment.rotation": 10})
    preview = project.augment_preview(n=4)
    assert isinstance(preview, Path) and preview.is_file()
    checker = parse(preview)
    assert preview.name in text_of(checker)
    assert_png_uris(checker, 1)


@pytest.mark.skipif(
    not (hasattr(Project, "report") and hasattr(Project, "audit")),
    reason="Project.report / Project.audit not in this version",
)
def test_report_and_audit(flow):
    project = flow["project"]
    audit = project.audit()
    checker = parse(audit)
    text = text_of(checker)
    assert "table" in checker.tags and audit.level in text
    for section in audit.sections:
        assert section in text
    report = project.report(pdf=False)
    text = text_of(parse(report))
    assert report.verdict in text and str(report.html) in text


def test_tune(flow):
    project = flow["project"]
    project.update_config(
        {
            "tune.space": {
                "train.learning_rate": {"type": "log_uniform", "low": 1e-3, "high": 3e-2}
            },
            "tune.epochs": 1,
            "tune.startup_trials": 1,
        }
    )
    result = project.tune(trials=2, progress=False)
    checker = parse(result)
    text = text_of(checker)
    assert result.study in text and f"{result.best_value:.4f}" in text
    assert "train.learning_rate" in text


def test_monitor_and_retrain(flow, tmp_path: Path):
    from PIL import Image, ImageOps

    project = flow["project"]
    fresh = tmp_path / "fresh"  # inverted digits: new content, and a drift
    for path in sorted(project.paths.raw.rglob("*.png"))[:300]:
        target = fresh / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(path).convert("L")).save(target)
    monitored = project.monitor(inputs=fresh)
    checker = parse(monitored)
    text = text_of(checker)
    assert monitored.status == "ALERT" and "ALERT" in text and "embedding MMD" in text
    assert_png_uris(checker, 1)
    retrained = project.retrain(str(fresh), progress=False)
    checker = parse(retrained)
    text = text_of(checker)
    assert retrained.outcome.upper() in text and retrained.reason[:40] in text
    assert_png_uris(checker, 1 if retrained.comparison else 0)  # champion vs challenger


def test_every_project_method_result_is_covered():
    """A new public method that returns a result needs a check in this module."""
    covered = {
        "status",
        "define",
        "ingest",
        "explore",
        "split",
        "train",
        "lr_find",
        "augment_preview",
        "evaluate",
        "test",
        "export",
        "predict",
        "promote",
        "rollback",
        "report",
        "audit",
        "monitor",
        "retrain",
        "versions",
        "tune",
        "review_label",  # its HTML: tests/data/test_label_review.py
        "label_candidates",
        "explain",  # its HTML: tests/evaluate/test_explain.py
    }
    not_results = {
        "init",
        "load",
        "config",
        "update_config",
        "set_columns",  # the YAML diff, a string (as update_config edits the file)
        "step",
        "write_lock",
        "upstream_hash",
        "serve",
        "run",
        "demo",
        "with_overrides",
        "run_step",
    }  # the step table's runner: the results are the methods' own
    public = {name for name in dir(Project) if not name.startswith("_")}
    assert public - covered - not_results == set(), public - covered - not_results
