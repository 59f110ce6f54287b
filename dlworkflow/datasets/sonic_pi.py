"""sonic-pi: the audio clips of Sonic Pi, installed by the Debian package sonic-pi-samples.

165 FLAC clips (44.1 kHz, 16-bit but two 24-bit, 92 stereo and 73 mono, 0.02 s to 10.7 s,
22 MB) in /usr/share/sonic-pi/samples, read in place, never copied. A clip's class is its file
name's prefix before the first '_' (tabla_ke1.flac -> tabla); the classes with at least
MIN_CLIPS clips are kept: tabla 26, elec 25, drum 20, loop 17, bd 13, ambi 11, mehackit 11,
perc 10, bass 9, glitch 8 (150 clips, 10 classes); vinyl, sn, guit (4 each) and misc (3)
are left out. Registered as builtin:sonic-pi (audio-classification): materialise writes a
table (path, label, licence) over the installed clips and a dataset card that says plainly
that this is instrument and sample classification: no spoken-word data set installs offline.

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

from dlworkflow.datasets.catalog import BUILTINS, BuiltinDataset, write_csv_source
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


#: the clips that Debian's copyright file does not list one by one: its catch-all "Files: *"
#: entry (MIT) covers them, while the samples' README lists their freesound.org pages (user
#: hullum, 2017) under CC0 like every other sample. Both licences allow use and
#: redistribution, so none is left out. Every other clip has its own "License: CC0" entry.
CATCH_ALL = frozenset(
    {
        "ambi_sauna",
        "bd_mehackit",
        "sn_generic",
        *(f"glitch_{n}" for n in ("bass_g", "perc1", "perc2", "perc3", "perc4", "perc5")),
        "glitch_robot1",
        "glitch_robot2",
        *(f"loop_{n}" for n in ("3d_printer", "drone_g_97", "electric", "weirdo")),
        *(f"loop_{n}" for n in ("mehackit1", "mehackit2", "perc1", "perc2")),
        *(f"mehackit_phone{i}" for i in range(1, 5)),
        *(f"mehackit_robot{i}" for i in range(1, 8)),
        *(f"perc_{n}" for n in ("bell2", "door", "impact1", "impact2", "swoosh")),
    }
)
CC0 = "CC0 (Debian copyright: its own entry)"
MIT_OR_CC0 = "MIT (Debian copyright: catch-all Files: *); CC0 (samples README, freesound)"
COPYRIGHT = Path("/usr/share/doc/sonic-pi-samples/copyright")
N_KEPT = 150  # sonic_pi_clips(): 10 classes of at least MIN_CLIPS clips
CARD = """# sonic-pi (built-in dataset)

INSTRUMENT AND SAMPLE CLASSIFICATION, NOT SPEECH. No spoken-word data set installs offline
here (none is in a Debian or pip package this project can install), so the built-in audio data
is the sample library of Sonic Pi: drum hits, electronic sounds, loops, ambient textures. A
model trained on it says nothing about keyword spotting or speech recognition.

- 150 FLAC clips of the Debian package sonic-pi-samples (/usr/share/sonic-pi/samples), read
  in place, never copied: 44.1 kHz, 16-bit (two 24-bit), mono or stereo, 0.02 s to 10.7 s.
- The class is the file name's prefix before the first '_' (tabla_ke1.flac -> tabla). The
  10 classes with at least 8 clips are kept: tabla 26, elec 25, drum 20, loop 17, bd 13,
  ambi 11, mehackit 11, perc 10, bass 9, glitch 8. vinyl, sn, guit (4 clips each) and misc (3)
  are left out. Some classes overlap in sound (bd bass drums and drum_bass_*, loop_tabla and
  tabla): the labels are the library's file names, not an acoustic taxonomy.
- SMALL: with 150 clips a test set of 15-30 clips gives accuracy a wide interval.
- With the default clipping limit (data.audio.max_clipping_share 1%), drum_bass_hard (3.1% of
  samples at full scale) and drum_heavy_kick (2.2%) are quarantined: 148 clips are ingested.
- Licence: 116 of the 150 clips have their own "License: CC0" entry in Debian's copyright file
  (/usr/share/doc/sonic-pi-samples/copyright), each with its freesound.org source and author.
  The other 34 (ambi_sauna, bd_mehackit, glitch_*, loop_3d_printer, loop_drone_g_97,
  loop_electric, loop_mehackit1/2, loop_perc1/2, loop_weirdo, mehackit_*, perc_bell2,
  perc_door, perc_impact1/2, perc_swoosh: uploads of freesound user hullum) are not listed
  there one by one and fall under its catch-all entry, MIT (Sonic Pi, Samuel Aaron); the
  samples' own README.md lists their freesound pages and says every sample is CC0. Both
  licences allow use and redistribution, so none is left out. The table's `licence` column
  says which applies to each clip.
"""


def clip_licence(path: Path) -> str:
    """How a clip is licensed, as Debian's copyright file and the samples' README say."""
    return MIT_OR_CC0 if path.stem in CATCH_ALL else CC0


def materialise(folder: Path) -> Path:
    """folder/sonic-pi.csv (path, label, licence; absolute paths of the installed clips, never
    copied) and folder/DATASET.md; the CSV's path."""
    clips = sonic_pi_clips()
    if len(clips) != N_KEPT:
        raise DataError(
            f"The {PACKAGE} clips are not as expected.",
            expected=f"{N_KEPT} clips in the classes with at least {MIN_CLIPS} clips",
            received=f"{len(clips)}: {class_counts(clips)}",
            fix=f"sudo apt-get install --reinstall -y {PACKAGE}",
        )
    rows = (
        {"path": str(path), "label": label, "licence": clip_licence(path)} for path, label in clips
    )
    return write_csv_source(folder, "sonic-pi.csv", ["path", "label", "licence"], rows, CARD)


BUILTINS.add(
    "sonic-pi",
    BuiltinDataset(
        name="sonic-pi",
        task="audio-classification",
        description="INSTRUMENT AND SAMPLE classification, not speech (no spoken-word data set "
        "installs offline here): 150 FLAC clips of Sonic Pi's sample library (drums, "
        "electronic sounds, loops, ambient, tabla, ...) in 10 classes by file-name prefix, "
        "those with at least 8 clips; read in place; SMALL",
        n_samples=N_KEPT,
        size="0.02-10.7 s, 44.1 kHz",
        licence="CC0 (116 clips, Debian copyright); the other 34 MIT by Debian's catch-all "
        "entry and CC0 by the samples' README (freesound.org)",
        source="Sonic Pi's samples from freesound.org (/usr/share/sonic-pi/samples of the "
        "installed package)",
        package=f"{PACKAGE} (Debian, make system-deps)",
        materialise=materialise,
        reads_from=samples_folder,
    ),
)
