"""System packages the tests need (system-packages.txt, installed by `make system-deps`).

A missing one fails the test with the command that installs it: never a skip (a skip hides
a machine that cannot run the suite) and never an install from inside a test."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest

LISTED = Path(__file__).resolve().parents[1] / "system-packages.txt"


def listed_packages() -> list[str]:
    lines = (line.split("#")[0].split() for line in LISTED.read_text().splitlines())
    return [words[0] for words in lines if words]


def missing_system_package(name: str) -> NoReturn:
    assert name in listed_packages(), f"{name} is not in {LISTED.name}"
    pytest.fail(
        f"the system package {name} is missing: run `make system-deps` (as root, or "
        f"`sudo apt-get install -y {name}`); it is listed in {LISTED.name}",
        pytrace=False,
    )


def sonic_pi_samples() -> Path:
    """The installed folder of Sonic Pi's sample clips (datasets.sonic_pi.samples_folder); the
    test fails with the install command when the system package is missing."""
    from dlworkflow.datasets import sonic_pi
    from dlworkflow.errors import DataError

    try:
        return sonic_pi.samples_folder()
    except DataError:
        missing_system_package(sonic_pi.PACKAGE)
