"""Collect the evidence, section by section, with a (transient) progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlworkflow.explore.duplicates import Duplicates, exact_duplicates, near_duplicates
from dlworkflow.explore.evidence import Evidence, MapEvidence
from dlworkflow.explore.overview import overview, read_privacy
from dlworkflow.explore.pixels import PixelReader, stratified_sample
from dlworkflow.explore.targets import groups, target_kind
from dlworkflow.similarity import confirm_side
from dlworkflow.tasks import task_of

if TYPE_CHECKING:
    import pandas as pd

    from dlworkflow.workspace import Workspace


class Stages:
    """A rich progress bar with one line per stage (a no-op when progress is off)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task: Any = None

    def start(self, text: str, total: int | None = None) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(text, total=total)

    def advance(self, done: int, total: int) -> None:
        self.bar.update(self.task, completed=done, total=total)


def gather(
    project: Workspace,
    manifest: pd.DataFrame,
    quarantine: pd.DataFrame,
    info: Any,
    stages: Stages,
    reader: PixelReader,
    *,
    assignments: pd.DataFrame | None = None,
    held_out: pd.DataFrame | None = None,
) -> Evidence:
    """assignments: (sample_id, split) of the manifest's rows after a split (the step leaves the
    sealed rows out of both unless `--include-test`), None before the split. held_out:
    sample_id, split, content_hash and group (no label) of the sealed rows left out, for the
    leakage check alone."""
    task = project.config.task
    stages.start("overview and exact duplicates")
    ev = Evidence(
        task=task,
        manifest=manifest,
        overview=overview(manifest, quarantine, info=info, task=task),
        exact=exact_duplicates(manifest),
    )
    ev.target = target_kind(task).gather(manifest, task_of(task))
    privacy = project.paths.state / "privacy.json"
    if privacy.is_file():
        ev.overview.privacy = read_privacy(privacy)
    modality = task_of(task).modality
    if modality == "image":
        _images(project, ev, stages, reader)
    elif modality == "text":
        _text(ev)
    elif modality == "sequence":
        _series(project, ev, stages)
    elif modality == "audio":
        _audio(project, ev, stages)
    else:
        _tabular(project, ev)
    split = assignments
    ev.test_ids = _test_ids(split)
    _map_and_labels(project, ev, stages, reader, test_ids=ev.test_ids)
    if split is not None:
        from dlworkflow.explore.leakage import leakage

        stages.start("cross-split leakage")
        ev.leakage = leakage(
            manifest, split, exact=ev.exact, near=ev.near or Duplicates(kind="near")
        )
        if held_out is not None and len(held_out):
            _held_out_leaks(ev.leakage, manifest, split, held_out)
    ev.unreadable = {**ev.unreadable, **reader.failed}
    return ev


def _images(project: Workspace, ev: Evidence, stages: Stages, reader: PixelReader) -> None:
    from dlworkflow.explore.image_quality import image_evidence

    stages.start("image statistics")
    ev.images = image_evidence(ev.manifest)
    if "phash" not in ev.manifest.columns:
        ev.note(
            "duplicates",
            "no perceptual hashes in the manifest: near duplicates not "
            "searched (run `dlw ingest` again)",
        )
        return
    distance = project.config.explore.near_duplicate_distance
    stages.start("near duplicates")
    manifest = ev.manifest

    _, size = _image_format(project)
    side = confirm_side(size)

    def pixels(rows: np.ndarray) -> np.ndarray:
        stages.start(f"reading {len(rows):,} images to confirm near duplicates", len(rows))
        return reader.gray(manifest.iloc[rows], side=side, progress=stages.advance)

    ev.near = near_duplicates(manifest, distance=distance, pixels=pixels)
    if task_of(ev.task).dense and ev.near.n_conflicting:
        ev.note(
            "duplicates",
            "The boxes or masks of near duplicates differ as the images do (a shifted or "
            "rescaled copy): 'conflicting' near duplicates are not label errors here; exact "
            "duplicates with different annotations are.",
        )


def _text(ev: Evidence) -> None:
    from dlworkflow.explore.text import normalised_duplicates, text_evidence

    ev.text = text_evidence(ev.manifest, groups=groups(ev.task, ev.manifest["label"]))
    ev.near = normalised_duplicates(ev.manifest)


def _series(project: Workspace, ev: Evidence, stages: Stages) -> None:
    """Lengths and channels of every series; statistics, class curves, sample plots and near
    duplicates from the series read (at most series_view.MAX_READ, a stratified choice)."""
    from dlworkflow.explore import series_view as sv

    manifest, seed = ev.manifest, project.config.seed
    read = _read_mask(manifest, sv.MAX_READ, seed)
    stages.start(f"reading {int(read.sum()):,} series")
    arrays, ok, failed = sv.read_series_rows(manifest[read])
    read[np.flatnonzero(read)[~ok]] = False
    ev.unreadable.update(failed)
    fmt = project.config.data.series
    ev.series = sv.series_evidence(
        manifest,
        arrays,
        read,
        names=list(fmt.channel_columns or []) if fmt.layout == "long" else [],
        per_class=min(project.config.explore.grid_per_class, 4),
        seed=seed,
    )
    stages.start("near-duplicate series")
    ev.near = sv.series_near_duplicates(manifest, arrays, read)


def _audio(project: Workspace, ev: Evidence, stages: Stages) -> None:
    """Duration, sample rate, loudness, silence and clipping of every clip (the manifest);
    spectrograms, fingerprints and features of the clips decoded (at most
    audio_view.MAX_DECODED, a stratified choice)."""
    from dlworkflow.explore import audio_view as av
    from dlworkflow.store.clips import ClipSettings

    manifest, seed = ev.manifest, project.config.seed
    settings = ClipSettings.from_config(project.config.data.audio)
    decode = _read_mask(manifest, av.MAX_DECODED, seed)
    stages.start(f"decoding {int(decode.sum()):,} clips", int(decode.sum()))
    spectra, failed = av.clip_spectra(manifest[decode], settings, progress=stages.advance)
    ev.unreadable.update(failed)
    ev.audio = av.audio_evidence(
        manifest,
        spectra,
        settings=settings,
        per_class=min(project.config.explore.grid_per_class, 4),
        seed=seed,
    )
    stages.start("near-duplicate clips")
    ev.near = av.audio_near_duplicates(manifest, spectra)


def _read_mask(manifest: pd.DataFrame, limit: int, seed: int) -> np.ndarray:
    """Rows to read: all, or a stratified `limit` of them."""
    import pandas as pd

    read = np.zeros(len(manifest), dtype=bool)
    read[stratified_sample(pd.Series(manifest["label"].astype(str)), limit=limit, seed=seed)] = True
    return read


def _tabular(project: Workspace, ev: Evidence) -> None:
    from dlworkflow.explore.tabular import tabular_evidence

    ev.tabular = tabular_evidence(
        ev.manifest, seed=project.config.seed, task=task_of(project.config.task)
    )


def _held_out_leaks(
    result: Any, manifest: pd.DataFrame, assignments: pd.DataFrame, held_out: pd.DataFrame
) -> None:
    """Exact duplicates and shared groups between the explored rows and the sealed rows left
    out, from content hashes and groups alone: no label and no pixels of a sealed sample."""
    import pandas as pd

    from dlworkflow.explore.leakage import SHOWN_LEAKS, SPLIT_ORDER, SplitLeak, _group_leaks
    from dlworkflow.store.splits import is_sealed

    split_of = dict(zip(assignments["sample_id"].astype(str), assignments["split"].astype(str)))
    label_of = dict(zip(manifest["sample_id"].astype(str), manifest["label"].astype(str)))
    twins_of: dict[str, list[str]] = {}
    for sid, digest in zip(manifest["sample_id"].astype(str), manifest["content_hash"]):
        if sid in split_of:
            twins_of.setdefault(str(digest), []).append(sid)
    for sid, digest, split in zip(
        held_out["sample_id"].astype(str), held_out["content_hash"], held_out["split"].astype(str)
    ):
        twins = twins_of.get(str(digest), [])[:5]
        if not twins:
            continue
        splits = [split_of[t] for t in twins]
        combo = " / ".join(sorted({*splits, split}, key=lambda s: SPLIT_ORDER.get(s, 9)))
        result.exact[combo] = result.exact.get(combo, 0) + 1
        result.examples.append(
            SplitLeak(
                "exact",
                [*twins, sid],
                [*splits, split],
                [*(label_of[t] for t in twins), "sealed, not explored"],
            )
        )
    result.examples.sort(key=lambda e: (not any(map(is_sealed, e.splits)), e.kind != "exact"))
    result.examples = result.examples[:SHOWN_LEAKS]
    if "group" in manifest.columns and "group" in held_out.columns:
        both = pd.concat(
            [manifest[["sample_id", "group"]], held_out[["sample_id", "group"]]], ignore_index=True
        )
        every = {**split_of, **dict(zip(held_out["sample_id"].astype(str), held_out["split"]))}
        _group_leaks(result, both, every)


def _test_ids(split: pd.DataFrame | None) -> set[str]:
    if split is None:
        return set()
    from dlworkflow.store.splits import is_sealed

    sealed = split["split"].astype(str).map(is_sealed)
    return set(split.loc[sealed, "sample_id"].astype(str))  # the test set and fresh slices


def _map_and_labels(
    project: Workspace, ev: Evidence, stages: Stages, reader: PixelReader, *, test_ids: set[str]
) -> None:
    """Features of every sample (never test rows; a stratified subsample only when
    explore.max_embed is set) -> 2-D map and label issues."""
    import pandas as pd

    from dlworkflow.explore.features import map_2d, reduce
    from dlworkflow.explore.label_issues import find_label_issues
    from dlworkflow.explore.targets import RegressionTarget

    cfg, seed = project.config.explore, project.config.seed
    pool = ev.manifest.assign(_row=np.arange(len(ev.manifest)))
    if test_ids:
        pool = pool[~pool["sample_id"].astype(str).isin(test_ids)]
        ev.note(
            "map",
            f"{len(test_ids):,} sealed test samples left out of the map and the label-issue search",
        )
    sample = pool.reset_index(drop=True)
    if cfg.max_embed is not None and len(pool) > cfg.max_embed:  # a cap the user asked for
        strata = task_of(ev.task).strata(pool["label"].astype(str).tolist())
        sample = pool.iloc[
            stratified_sample(pd.Series(strata, dtype=str), limit=cfg.max_embed, seed=seed)
        ].reset_index(drop=True)
        ev.note(
            "map",
            f"explore.max_embed: {cfg.max_embed:,}: a stratified {len(sample):,} of the "
            f"{len(pool):,} samples mapped and checked for label issues",
        )
    if len(sample) < 3:
        ev.note("map", "too few samples for a map")
        return
    features = _features(project, ev, sample, stages, reader)
    sample = sample[features.keep].reset_index(drop=True)
    for note in features.notes:
        ev.note("map", note)
    stages.start("2-D map")
    from threadpoolctl import threadpool_limits

    # one BLAS thread: PCA and the quick model are small; more threads (fighting torch's or
    # another process's) made them 5-10x slower on 2 cores, with the same result
    with threadpool_limits(limits=1, user_api="blas"):
        X = reduce(features.X, seed=seed)
        xy, variance = map_2d(X, seed=seed)
    labels = sample["label"].astype(str).to_numpy()
    ev.map = MapEvidence(
        xy=xy,
        labels=groups(ev.task, labels),
        method=features.method,
        variance=variance,
        sample=sample,
        n_cached=getattr(features, "n_cached", 0),
    )
    if isinstance(ev.target, RegressionTarget):
        ev.map.values = np.array([float(v) for v in labels])
    task = task_of(ev.task)
    if not task.single_label:
        ev.note(
            "label-issues",
            f"not applicable to {task.name}: confident learning needs one "
            "class per sample (the map's quick model predicts a class)",
        )
        return
    if not cfg.label_issues:
        ev.note("label-issues", "switched off (explore.label_issues: false)")
        return
    stages.start(f"label issues: 5-fold quick model on {len(sample):,} samples")
    with threadpool_limits(limits=1, user_api="blas"):
        ev.label_issues = find_label_issues(X, labels, seed=seed)
    marked = np.zeros(len(sample), dtype=bool)
    marked[[c.position for c in ev.label_issues.candidates]] = True
    ev.map.marked = marked


def _features(
    project: Workspace, ev: Evidence, sample: pd.DataFrame, stages: Stages, reader: PixelReader
) -> Any:
    from dlworkflow.explore import features as feat

    backbone = project.config.explore.backbone
    modality = task_of(ev.task).modality
    if modality == "image":
        channels, size = _image_format(project)
        stages.start(f"features of {len(sample):,} images", len(sample))
        return feat.image_features(
            sample,
            reader=reader,
            backbone=backbone,
            channels=channels,
            size=size,
            cache_dir=project.paths.cache,
            dataset_version=ev.overview.dataset_version,
            progress=stages.advance,
        )
    stages.start(f"features of {len(sample):,} samples")
    if modality == "text":
        texts = sample["text"].astype("string").fillna("").tolist()
        return feat.text_features(texts, backbone=backbone)
    if modality == "sequence":
        from dlworkflow.explore.series_view import sample_series_features

        return sample_series_features(sample, ev.series, seed=project.config.seed)
    if modality == "audio":
        from dlworkflow.explore.audio_view import sample_clip_features

        return sample_clip_features(sample, ev.audio)
    return feat.tabular_features(sample)


def _image_format(project: Workspace) -> tuple[int, tuple[int, int]]:
    from dlworkflow.store import read_dataset_info

    info = read_dataset_info(project)
    fmt = project.config.data.image
    channels = fmt.channels or info.channels or 1
    size = tuple(fmt.size or info.size or (28, 28))
    return int(channels), (int(size[0]), int(size[1]))
