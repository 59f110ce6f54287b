"""The 28 tests of "The ML Test Score: A Rubric for ML Production Readiness and Technical Debt
Reduction" (Breck, Cai, Nielsen, Salib, Sculley; IEEE Big Data 2017), as data.

Scoring (the paper's): 0.5 point for a test done manually with the result documented, 1 point
when it runs automatically and repeatedly; a section's score is the sum of its tests, the final
score the MINIMUM of the four sections."""

from __future__ import annotations

from dataclasses import dataclass

from dlworkflow.config import AUDIT_IDS

SECTIONS = ("Data", "Model", "Infrastructure", "Monitoring")


@dataclass(frozen=True)
class Test:
    id: str  # the key under `audit:` in dlworkflow.yaml
    section: str
    number: int
    title: str

    @property
    def label(self) -> str:
        return f"{self.section} {self.number}"


_TITLES = {
    "Data": (
        "Feature expectations are captured in a schema.",
        "All features are beneficial.",
        "No feature's cost is too much.",
        "Features adhere to meta-level requirements.",
        "The data pipeline has appropriate privacy controls.",
        "New features can be added quickly.",
        "All input feature code is tested.",
    ),
    "Model": (
        "Model specs are reviewed and submitted.",
        "Offline and online metrics correlate.",
        "All hyperparameters have been tuned.",
        "The impact of model staleness is known.",
        "A simpler model is not better.",
        "Model quality is sufficient on important data slices.",
        "The model is tested for considerations of inclusion.",
    ),
    "Infrastructure": (
        "Training is reproducible.",
        "Model specs are unit tested.",
        "The ML pipeline is integration tested.",
        "Model quality is validated before serving.",
        "The model is debuggable.",
        "Models are canaried before serving.",
        "Serving models can be rolled back.",
    ),
    "Monitoring": (
        "Dependency changes result in notification.",
        "Data invariants hold for inputs.",
        "Training and serving are not skewed.",
        "Models are not too stale.",
        "Models are numerically stable.",
        "Computing performance has not regressed.",
        "Prediction quality has not regressed.",
    ),
}

TESTS: tuple[Test, ...] = tuple(
    Test(AUDIT_IDS[7 * s + i], section, i + 1, title)
    for s, section in enumerate(SECTIONS)
    for i, title in enumerate(_TITLES[section])
)
BY_ID = {t.id: t for t in TESTS}

#: The paper's reading of the final score: (upper bound, meaning), first match.
LEVELS = (
    (0.0, "more of a research project than a productionized system"),
    (1.0, "not totally untested, but serious holes in reliability are likely"),
    (2.0, "a first pass at productionization; more investment may be needed"),
    (3.0, "reasonably tested, but more automation may be possible"),
    (5.0, "strong levels of automated testing and monitoring, fit for mission-critical systems"),
    (float("inf"), "exceptional levels of automated testing and monitoring"),
)


def level(final: float) -> str:
    return next(text for bound, text in LEVELS if final <= bound)
