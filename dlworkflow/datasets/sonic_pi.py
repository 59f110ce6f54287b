"""sonic-pi: the audio clips of Sonic Pi, installed by the Debian package sonic-pi-samples.

165 FLAC clips (44.1 kHz, 16-bit but two 24-bit, 92 stereo and 73 mono, 0.02 s to 10.7 s,
22 MB) in /usr/share/sonic-pi/samples, read in place, never copied. A clip's class is its file
name's prefix before the first '_' (tabla_ke1.flac -> tabla); the classes with at least
MIN_CLIPS clips are kept: tabla 26, elec 25, drum 20, loop 17, bd 13, ambi 11, mehackit 11,
perc 10, bass 9, glitch 8 (150 clips, 10 classes); vinyl, sn, guit (4 each) and misc (3)
are left out.

Licence: CC0. The samples' README.md (shipped beside them) says that every sample is from
freesound.org and was placed in the public domain under Creative Commons 0, with the link to
each original. Debian's copyright file (/usr/share/doc/sonic-pi-samples/copyright) lists 130
of the 165 files one by one, all "License: CC0"; the other 35 (ambi_sauna, bd_mehackit,
glitch_*, the newer loop_* and perc_*, mehackit_*, sn_generic: the 2017 uploads of freesound
user hullum) fall under its catch-all "Files: *" entry (MIT, Sonic Pi's code), while the
README lists their freesound pages as CC0 too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from dlworkflow.errors import DataError

PACKAGE = "sonic-pi-samples"
SEARCH_DIRS: tuple[Path, ...] = (Path("/usr/share/sonic-pi/samples"),)
N_CLIPS = 165  # what the package installs (sonic-pi-samples 3.2.2~repack-8)
MIN_CLIPS = 8  # a class needs this many clips to be kept


def samples_folder() -> Path:
    """The installed folder of the FLAC clips, or a DataError that says how to install it."""
    for folder in SEARCH_DIRS:
        if folder.is_dir() and any(folder.glob("*.flac")):
            return folder
    raise DataError(
        "The built-in audio clips need the system package sonic-pi-samples, which is not "
        "installed.",
        expected=f"the FLAC clips of {PACKAGE} in {', '.join(str(d) for d in SEARCH_DIRS)}",
        received="no .flac file there",
        fix=f"make system-deps (it installs {PACKAGE}, listed in system-packages.txt), or "
        f"sudo apt-get install -y {PACKAGE} (Debian/Ubuntu)",
    )


def clip_class(path: Path) -> str:
    """The class of a clip: its file name's prefix before the first '_' (bd_808.flac -> bd)."""
    return path.stem.split("_", 1)[0]


def all_clips() -> list[tuple[Path, str]]:
    """Every installed clip with its class, sorted by path (no class left out)."""
    folder = samples_folder()
    clips = [
        (path, clip_class(path))
        for path in sorted(folder.glob("*.flac"))
        if path.is_file() and "_" in path.stem
    ]
    if len(clips) < N_CLIPS // 2:
        raise DataError(
            f"The {PACKAGE} folder holds too few clips: the installation looks incomplete.",
            expected=f"{N_CLIPS} FLAC clips named <class>_<name>.flac in {folder}",
            received=f"{len(clips)}",
            fix=f"sudo apt-get install --reinstall -y {PACKAGE}",
        )
    return clips


def sonic_pi_clips(*, min_clips: int = MIN_CLIPS) -> list[tuple[Path, str]]:
    """(path, class) of the clips whose class has at least `min_clips` clips, sorted by path."""
    clips = all_clips()
    counts = Counter(label for _, label in clips)
    return [(path, label) for path, label in clips if counts[label] >= min_clips]


def class_counts(clips: list[tuple[Path, str]] | None = None) -> dict[str, int]:
    """Clips per class, most first (ties by name), of `clips` or of `sonic_pi_clips()`."""
    counts = Counter(label for _, label in (sonic_pi_clips() if clips is None else clips))
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
