"""UCR/UEA time-series classification problems shipped as `.ts` files in the sktime wheel.

sktime is installed --no-deps as a data-only package (datasets/data_packages.py; it is never
imported) and its files `sktime/datasets/data/<Name>/<Name>_TRAIN.ts` and `_TEST.ts` are read
in place with dlworkflow.store.ts_format. Each problem keeps the archive's own train/test
division, which published accuracies refer to. Every file is checked against the shape the
archive documents, so a changed or damaged copy is an error, not a different data set.

Registered as the built-in datasets gunpoint, basic-motions and japanese-vowels
(sequence-classification): the materialised source is the installed TRAIN file itself, whose
TEST sibling the sequence ingest reads with it (data/series_source.py), so both keep their
`source_split`. Terms: no licence file ships with the data; the archives ask to be cited.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dlworkflow.datasets.data_packages import find_file, install_hint
from dlworkflow.errors import DataError, UnknownKeyError
from dlworkflow.store.ts_format import TsDataset, read_ts

PIN = "sktime==1.2.0"


@dataclass(frozen=True)
class UcrProblem:
    """What the archive documents about one problem (checked on every load)."""

    name: str
    n_train: int
    n_test: int
    channels: int
    min_length: int
    max_length: int
    classes: tuple[str, ...]
    description: str


PROBLEMS = {
    p.name: p
    for p in (
        UcrProblem(
            "GunPoint", 50, 150, 1, 150, 150, ("1", "2"),
            "hand X position of an actor drawing a gun or pointing (Gun-Draw vs Point)",
        ),
        UcrProblem(
            "BasicMotions", 40, 40, 6, 100, 100,
            ("Standing", "Running", "Walking", "Badminton"),
            "smart-watch 3D accelerometer and gyroscope, 10 s at 10 Hz, four activities",
        ),
        UcrProblem(
            "JapaneseVowels", 270, 370, 12, 7, 29, tuple(str(i) for i in range(1, 10)),
            "12 LPC cepstrum coefficients of the vowel /ae/ said by 9 speakers (speaker id)",
        ),
    )
}  # fmt: skip


def ucr_files(name: str) -> tuple[Path, Path]:
    """The installed (train, test) `.ts` files of the problem `name`."""
    problem = _problem(name)
    paths = []
    for split in ("TRAIN", "TEST"):
        relative = f"datasets/data/{problem.name}/{problem.name}_{split}.ts"
        path = find_file("sktime", relative)
        if path is None:
            raise DataError(
                f"The UCR/UEA problem {problem.name} needs sktime's data files, which are "
                "not installed.",
                expected=f"sktime/{relative}",
                received="no sktime folder holds it",
                fix=install_hint(PIN),
            )
        paths.append(path)
    return paths[0], paths[1]


def load_ucr(name: str) -> tuple[TsDataset, TsDataset]:
    """The archive's train and test sets of `name` (GunPoint, BasicMotions, JapaneseVowels)."""
    problem = _problem(name)
    train_path, test_path = ucr_files(problem.name)
    train, test = read_ts(train_path), read_ts(test_path)
    for data, expected in ((train, problem.n_train), (test, problem.n_test)):
        _check(problem, data, expected)
    return train, test


def _problem(name: str) -> UcrProblem:
    if name in PROBLEMS:
        return PROBLEMS[name]
    close = difflib.get_close_matches(name, PROBLEMS, n=1, cutoff=0.5)
    close += [p for p in PROBLEMS if p.lower() == name.lower()]
    raise UnknownKeyError(
        f"There is no UCR/UEA problem {name!r} among those dlworkflow reads.",
        expected=", ".join(PROBLEMS),
        received=repr(name),
        fix=f"use {close[-1]!r}" if close else "use one of the names above",
    )


def _check(problem: UcrProblem, data: TsDataset, n_cases: int) -> None:
    lengths = data.lengths
    found = (
        len(data),
        data.n_channels,
        int(lengths.min()),
        int(lengths.max()),
        data.class_labels,
    )
    wanted = (n_cases, problem.channels, problem.min_length, problem.max_length, problem.classes)
    # the archive's length range covers train and test together: each file lies inside it
    ok = (
        found[0] == wanted[0]
        and found[1] == wanted[1]
        and found[2] >= wanted[2]
        and found[3] <= wanted[3]
        and (found[4] is not None and sorted(found[4]) == sorted(problem.classes))
    )
    if not ok:
        raise DataError(
            f"{data.path} is not the {problem.name} file the archive describes.",
            expected=f"{n_cases} cases, {problem.channels} channel(s), lengths "
            f"{problem.min_length}-{problem.max_length}, classes {', '.join(problem.classes)}",
            received=f"{found[0]} cases, {found[1]} channel(s), lengths {found[2]}-{found[3]}, "
            f"classes {', '.join(found[4] or ())}",
            fix=f"{install_hint(PIN)} --force-reinstall",
        )


# --- the built-in datasets: `dlw ingest builtin:gunpoint` reads the installed pair in place ---

ARCHIVE_TERMS = (
    "no licence file ships with the data (sktime's code is BSD-3-Clause); the archive "
    "offers the data freely for research and asks that work using it cite the archive: "
    "{cite}"
)
UCR_CITE = (
    "Dau, Keogh et al. (2019), The UCR time series archive, IEEE/CAA Journal of Automatica "
    "Sinica 6(6):1293-1305"
)
UEA_CITE = (
    "Bagnall, Dau, Lines, Flynn, Large, Bostrom, Southam and Keogh (2018), The UEA "
    "multivariate time series classification archive, 2018, arXiv:1811.00075"
)


@dataclass(frozen=True)
class UcrBuiltin:
    """One registered problem: its built-in name, the archive that cites it, the origin."""

    name: str
    problem: str
    cite: str
    origin: str
    size: str


UCR_BUILTINS = (
    UcrBuiltin(
        "gunpoint", "GunPoint", UCR_CITE,
        "motion-tracking data donated to the UCR archive by C. A. Ratanamahatana and "
        "E. Keogh", "150 steps, 1 channel",
    ),
    UcrBuiltin(
        "basic-motions", "BasicMotions", UEA_CITE,
        "a student project recording four activities with a smart watch (UEA archive)",
        "100 steps, 6 channels",
    ),
    UcrBuiltin(
        "japanese-vowels", "JapaneseVowels", UEA_CITE,
        "Kudo, Toyama and Shimbo (1999), Multidimensional curve classification using "
        "passing-through regions, Pattern Recognition Letters 20:1103-1111 (UCI repository)",
        "7-29 steps, 12 channels",
    ),
)  # fmt: skip

CARD = """# {name} (built-in dataset)

The UCR/UEA time-series classification problem {problem}, as shipped in the sktime 1.2.0
wheel (sktime/datasets/data/{problem}/{problem}_TRAIN.ts and _TEST.ts), read in place,
never copied.

- {description}.
- {n_train} train and {n_test} test series ({size}), classes {classes}. The archive's own
  train/test division is kept in the manifest's `source_split` column; with
  `split.use_source_split: true` the TEST file is the sealed test set, which is what
  published accuracies refer to.
- Licence: {terms}.
- Origin: {origin}.
"""


def _materialiser(builtin: UcrBuiltin) -> Callable[[Path], Path]:
    def materialise(folder: Path) -> Path:
        """folder/DATASET.md; the installed TRAIN file (its TEST sibling is read with it)."""
        from dlworkflow.fileio import atomic_write_text

        problem = PROBLEMS[builtin.problem]
        load_ucr(problem.name)  # the installed files are checked against the archive's shapes
        card = CARD.format(
            name=builtin.name,
            problem=problem.name,
            description=problem.description[0].upper() + problem.description[1:],
            n_train=problem.n_train,
            n_test=problem.n_test,
            size=builtin.size,
            classes=", ".join(problem.classes),
            terms=ARCHIVE_TERMS.format(cite=builtin.cite),
            origin=builtin.origin,
        )
        atomic_write_text(folder / "DATASET.md", card)
        return ucr_files(problem.name)[0]

    return materialise


def problem_folder(name: str) -> Path:
    """The installed folder of the problem `name` (its TRAIN and TEST files)."""
    return ucr_files(name)[0].parent


def _register() -> None:
    from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset

    for builtin in UCR_BUILTINS:
        problem = PROBLEMS[builtin.problem]
        BUILTINS.add(
            builtin.name,
            BuiltinDataset(
                name=builtin.name,
                task="sequence-classification",
                description=f"UCR/UEA {problem.name}: {problem.description}; "
                f"{len(problem.classes)} classes, the archive's {problem.n_train} train / "
                f"{problem.n_test} test division kept (split.use_source_split)",
                n_samples=problem.n_train + problem.n_test,
                size=builtin.size,
                licence="UCR/UEA archive: free for research, cite " + builtin.cite,
                source=f"sktime/datasets/data/{problem.name}/{problem.name}_TRAIN.ts and "
                f"_TEST.ts of the installed package ({builtin.origin})",
                package=f"{PIN} (pip, --no-deps, data only)",
                materialise=_materialiser(builtin),
                reads_from=partial(problem_folder, problem.name),
            ),
        )


_register()
