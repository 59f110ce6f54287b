"""The one schema of dlworkflow.yaml (pydantic v2, extra keys forbidden, versioned)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from dlworkflow.errors import ConfigError, CriterionMissingError
from dlworkflow.registry import closest

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

SCHEMA_VERSION = 1
CONFIG_FILE = "dlworkflow.yaml"
SETTING_INPUT = "setting:"  # a ledger input: this run read the key named after it elsewhere

TaskType = Literal[
    "image-classification",
    "text-classification",
    "tabular-classification",
    "tabular-regression",
    "image-regression",
    "tabular-multilabel",
    "image-multilabel",
    "text-multilabel",
    "object-detection",
    "semantic-segmentation",
    "sequence-classification",
    "audio-classification",
]  # = dlworkflow.tasks.task_names()
# every task's primary metrics; which of them a project may use depends on its task (the
# steps check it against dlworkflow.tasks)
MetricName = Literal[
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "auroc",
    "rmse",
    "mae",
    "r2",
    "mape",
    "micro_f1",
    "map",
    "subset_accuracy",
    "map50",
    "miou",
    "dice",
    "pixel_accuracy",
]
Sensitivity = Literal["none", "pii", "phi"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Constraints(Strict):
    max_latency_ms: float | None = Field(
        None, gt=0, description="Largest acceptable CPU latency for one sample (batch 1), in ms."
    )
    max_model_size_mb: float | None = Field(
        None, gt=0, description="Largest acceptable size of the exported model, in MB."
    )


class Problem(Strict):
    """Step 1: what problem is solved and what counts as success, written before any data."""

    objective: str | None = Field(None, description="The objective in plain words.")
    primary_metric: MetricName | None = Field(
        None, description="The metric the verdict is judged on."
    )
    target: float | None = Field(
        None,
        description="The value of the primary metric that counts as success: at least "
        "this for a metric where higher is better (accuracy: 0 to 1), at most this where lower "
        "is (RMSE, in the target's units).",
    )
    constraints: Constraints = Field(
        default_factory=Constraints, description="Deployment constraints, measured at `dlw export`."
    )
    constituencies: list[str] = Field(
        default_factory=list, description="Who is affected by and decides on the result."
    )
    assumptions: list[str] = Field(
        default_factory=list,
        description="What is taken for granted "
        "(the data is representative, the labels are correct, ...); listed in the report.",
    )
    data_sensitivity: Sensitivity = Field(
        "none", description="none, pii (personal data) or phi (patient data)."
    )

    def has_success_criterion(self) -> bool:
        return self.primary_metric is not None and self.target is not None

    def require_success_criterion(self, *, needed_by: str) -> tuple[str, float]:
        """The (metric, target) pair, or an error that says how to write it."""
        if self.primary_metric is None or self.target is None:
            missing = [k for k in ("primary_metric", "target") if getattr(self, k) is None]
            raise CriterionMissingError(
                f"{needed_by} needs a success criterion, and the problem has none: "
                f"{' and '.join('problem.' + k for k in missing)} not set.",
                expected="problem.primary_metric (accuracy, balanced_accuracy, macro_f1, auroc; "
                "regression: rmse, mae, r2, mape; multi-label: macro_f1, micro_f1, map, "
                "subset_accuracy) and problem.target, agreed before the test set is used",
                received=f"primary_metric={self.primary_metric!r}, target={self.target!r}",
                fix="run `dlw define --metric accuracy --target 0.95` (your metric and target), "
                "or set them under `problem:` in dlworkflow.yaml",
            )
        return self.primary_metric, self.target


class ImageFormat(Strict):
    channels: Literal[1, 3] | None = Field(
        None, description="1 (grayscale) or 3 (RGB); null: the most common mode in the data."
    )
    size: tuple[int, int] | None = Field(
        None, description="[height, width] the network sees; null: the most common size."
    )


class Tiles(Strict):
    """Object detection: cut large images into overlapping tiles at ingest."""

    size: int = Field(400, ge=32, le=8192, description="Side of a square tile, pixels.")
    overlap: int = Field(0, ge=0, description="Pixels two neighbouring tiles share.")
    min_visible: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A box cut by a tile edge is kept (clipped) when at least this share of "
        "its area lies inside the tile.",
    )
    block: int | None = Field(
        None,
        ge=32,
        description="Spatial blocks for the split: tiles whose top-left corner falls in the "
        "same block of this many pixels of one image form one group (one orthomosaic can "
        "then feed train, validation and test, block by block; a crown cut by a block edge "
        "can show in two blocks). A multiple of size, with overlap 0. null: the tiles of one "
        "image form one group.",
    )

    @model_validator(mode="after")
    def _blocks_hold_whole_tiles(self) -> Tiles:
        if self.block is not None:
            if self.overlap:
                raise ValueError(
                    "tiles.block needs tiles.overlap 0: overlapping tiles of neighbouring "
                    "blocks share pixels across the split"
                )
            if self.block % self.size:
                raise ValueError(
                    f"tiles.block ({self.block}) must be a multiple of tiles.size ({self.size})"
                )
        return self


class SeriesFormat(Strict):
    """Sequence tasks: how series are read at ingest and what is quarantined."""

    layout: Literal["auto", "long", "wide"] = Field(
        "auto",
        description="Tables: `long` holds one row per time step (data.id_column, "
        "data.series.time_column, channel columns, label); `wide` one row per series (the "
        "time steps as numeric columns); auto: long when the table has the id and time "
        "columns, else wide.",
    )
    time_column: str = Field(
        "time", description="Long tables: the column that orders the steps of one series."
    )
    channel_columns: list[str] | None = Field(
        None,
        description="Long tables: the channel columns; null: every numeric column but the "
        "id, time, label and group columns. Wide tables: the time-step columns; null: every "
        "numeric column but the label, group and id columns.",
    )
    labels_file: str | None = Field(
        None,
        description="A folder of .npy arrays: the CSV of file,label (and group) rows; null: "
        "`labels.csv` in the folder.",
    )
    min_length: int = Field(
        2, ge=1, description="Series with fewer time steps are quarantined (too short)."
    )
    max_length: int = Field(
        100_000, ge=1, description="Series with more time steps are quarantined (too long)."
    )
    max_channels: int = Field(1_000, ge=1, description="Series with more channels are refused.")


class AudioFormat(Strict):
    """Audio tasks: how clips are decoded for the network, and what is quarantined."""

    sample_rate: int = Field(
        16_000,
        ge=1_000,
        le=192_000,
        description="Every clip is mixed down to mono and resampled (polyphase) to this rate.",
    )
    duration: float = Field(
        2.0, gt=0, le=600, description="Seconds the network sees (see data.audio.policy)."
    )
    policy: Literal["fixed", "max"] = Field(
        "fixed",
        description="fixed: crop or zero-pad every clip to exactly `duration`; max: crop "
        "only the clips longer than `duration` (a batch is zero-padded to its longest).",
    )
    crop: Literal["centre", "start"] = Field(
        "centre", description="Which part of a clip that is too long is kept."
    )
    max_seconds: float = Field(
        60.0, gt=0, description="Longer clips are quarantined (too long), before decoding."
    )
    max_bytes: int = Field(
        50_000_000, gt=0, description="Larger files are quarantined before they are opened."
    )
    silence_dbfs: float = Field(
        -60.0, le=0, description="A clip whose RMS level is below this (dBFS) is silent."
    )
    max_clipping_share: float = Field(
        0.01,
        ge=0,
        le=1,
        description="A clip with a larger share of samples at full scale is quarantined "
        "(clipping).",
    )


class DataRequirements(Strict):
    """Meta-level requirements on the data, checked by every `dlw ingest` (ML Test Score,
    Data 4): what a source must satisfy before a model may learn from it."""

    min_samples_per_class: int = Field(
        10,
        ge=1,
        description="Classification: every class needs at least this many samples "
        "(multi-label: positives of each label).",
    )
    max_imbalance: float | None = Field(
        100.0,
        gt=1,
        description="Classification: the largest class may have at most this many times "
        "the samples of the smallest; null: no limit.",
    )
    allowed_sources: list[str] | None = Field(
        None,
        description="Patterns (shell-style, e.g. builtin:*, /data/approved/*, s3://bucket/*) "
        "a source must match to be ingested; null: any source.",
    )


class Data(Strict):
    """Step 2: where the data comes from and how to read it."""

    source: str | None = Field(
        None, description="builtin:NAME, a folder of class sub-folders, or a CSV (path,label)."
    )
    path_column: str = Field(
        "path",
        description="Table column with the image path (image task), "
        "relative to the table's folder or absolute.",
    )
    label_column: str = Field(
        "label",
        description="Table column with the label (regression: "
        "the number; multi-label: the labels, joined by data.label_delimiter).",
    )
    label_columns: list[str] | None = Field(
        None,
        description="Multi-label tasks: one-hot label columns (1/0, true/false), one per "
        "label, instead of one delimited label_column.",
    )
    label_delimiter: str = Field(
        "|",
        min_length=1,
        description="Multi-label tasks: what separates the labels in label_column.",
    )
    group_column: str | None = Field(
        None, description="CSV column whose value ties samples together (patient, session)."
    )
    text_column: str = Field("text", description="Table column with the text (text task).")
    feature_columns: list[str] | None = Field(
        None,
        description="Tabular task: the feature columns; null: every column but the "
        "label, group and id columns.",
    )
    id_column: str | None = Field(
        None, description="Table column with a unique sample id; null: the path, or the row."
    )
    classes: list[str] | None = Field(
        None,
        description="The allowed label values; rows with other labels are quarantined. "
        "null: whatever labels the data has.",
    )
    image: ImageFormat = Field(
        default_factory=ImageFormat, description="The image format the network sees."
    )
    max_image_pixels: int = Field(
        89_478_485, gt=0, description="Images with more pixels are quarantined (Pillow's limit)."
    )
    max_image_side: int = Field(
        65_500, gt=0, description="Images with a longer side are quarantined (absurd dimensions)."
    )
    root: str | None = Field(
        None,
        description="Paths in a table must lie inside this folder (relative: to the project); "
        "null: inside the table's own folder. Paths outside are quarantined with the reason.",
    )
    max_classes: int = Field(
        1000,
        ge=2,
        description="Most classes a label column may have; more looks like an id column.",
    )
    workers: int | Literal["auto"] = Field(
        "auto",
        description="Processes that decode and hash images during ingest; auto: one per CPU "
        "core from `dlw` (1 from a Python script: a number opts in, and the script then needs "
        "an `if __name__ == '__main__':` guard). A pool starts only past 2,000 images; the "
        "manifest and dataset version are the same whatever the count.",
    )
    remote_max_files: int = Field(
        100_000, ge=1, description="Most files one remote source may hold (dlw ingest s3://...)."
    )
    remote_max_gb: float = Field(
        50.0, gt=0, description="Most bytes, in GB, one remote source may hold."
    )
    sensitive_columns: list[str] = Field(
        default_factory=list,
        description="Manifest or table columns that concern inclusion (age group, sex, site): "
        "evaluation reports the primary metric per group and the largest gap between groups, "
        "with its interval.",
    )
    requirements: DataRequirements = Field(
        default_factory=DataRequirements,
        description="Requirements every ingest checks (samples per class, imbalance, sources).",
    )
    annotations: str | None = Field(
        None,
        description="Object detection: the boxes. A COCO JSON file, a folder of Pascal VOC "
        "XML or YOLO txt files (one per image, matched by name), or a CSV of "
        "path,xmin,ymin,xmax,ymax,label. Semantic segmentation: COCO JSON polygons or RLE. "
        "null: beside the images (source folder).",
    )
    annotation_format: Literal["auto", "coco", "voc", "yolo", "csv"] = Field(
        "auto", description="The format of data.annotations; auto: from the file names."
    )
    tiles: Tiles | None = Field(
        None,
        description="Object detection: tile large images at ingest ({size, overlap, "
        "min_visible, block}); the tiles of one image (or of one block, tiles.block) form one "
        "group, so they never straddle the split. null: whole images.",
    )
    masks: str | None = Field(
        None,
        description="Semantic segmentation: a folder of index or palette PNG masks matched "
        "to the images by name (images/a/b.jpg -> a/b.png, else b.png), a CSV of image,mask "
        "paths (relative to the CSV), or a COCO JSON file (polygons or RLE). null: the source "
        "folder holds `images/` and `masks/` (or the images and a `masks` folder). Class "
        "names: data.classes (index i names value i), else `classes.txt` in the source folder, "
        "else the values.",
    )
    ignore_index: int | None = Field(
        255,
        ge=0,
        le=255,
        description="Semantic segmentation: the mask value no loss or metric counts "
        "(unlabelled pixels); null: none.",
    )
    max_gap: int = Field(
        3,
        ge=0,
        description="Sequence tasks: runs of at most this many missing (NaN) steps inside a "
        "series are filled by linear interpolation; a longer run quarantines the series.",
    )
    series: SeriesFormat = Field(
        default_factory=SeriesFormat, description="Sequence tasks: reading the series."
    )
    audio: AudioFormat = Field(
        default_factory=AudioFormat, description="Audio tasks: decoding the clips."
    )
    additions: list[str] = Field(
        default_factory=list,
        description="Fresh labelled sources added by `dlw retrain --data`, "
        "ingested after `source` (sample ids prefixed add<N>/). Their samples never join the "
        "sealed test set: their test share forms a separate sealed slice, fresh<N>.",
    )


class Privacy(Strict):
    """Step 2: the PHI/PII scan. Mandatory when problem.data_sensitivity is pii or phi."""

    scan: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: scan when data_sensitivity is pii or phi."
    )
    accept_findings_reason: str | None = Field(
        None, description="Train despite remaining findings; the reason is recorded."
    )
    accept_findings_version: str | None = Field(
        None,
        description="The dataset version (ingest hash) accept_findings_reason was given for; "
        "set by `dlw ingest --accept-findings`. A new dataset version needs a new decision.",
    )
    deidentify: bool = Field(
        False,
        description="Scrub PHI/PII from copies of the data at every ingest (set by "
        "`dlw ingest --deidentify`; `dlw retrain --data` additions included).",
    )


class Explore(Strict):
    """Step 3: what `dlw explore` computes."""

    near_duplicate_distance: int = Field(
        6, ge=0, le=64, description="Max Hamming distance of 64-bit perceptual hashes."
    )
    grid_per_class: int = Field(8, ge=1, le=64, description="Sample thumbnails per class.")
    max_embed: int | None = Field(
        None,
        ge=100,
        description="None (the default): every sample is embedded for the map and the "
        "label-issue search; a number caps them (a stratified subsample beyond).",
    )
    backbone: Literal["auto", "pixels"] = Field(
        "auto",
        description="auto: pretrained backbone features (EfficientNet-Lite0 / MiniLM) "
        "when installed; pixels: raw pixels.",
    )
    label_issues: bool = Field(
        True, description="Search for label-issue candidates (cleanlab) in `dlw explore`."
    )


class Split(Strict):
    """Step 4: the train / validation / sealed test split."""

    train: float = Field(
        0.70,
        gt=0,
        lt=1,
        description="Share of the samples in the train split; train + val + test must be 1.",
    )
    val: float = Field(
        0.15, gt=0, lt=1, description="Share of the samples in the validation split."
    )
    test: float = Field(
        0.15, gt=0, lt=1, description="Share of the samples in the sealed test split."
    )
    stratify: bool = Field(True, description="Keep each class's share the same in every split.")
    group_by: bool = Field(True, description="Keep samples sharing data.group_column in one split.")
    use_source_split: bool = Field(
        False,
        description="Sequence tasks: keep the source's own train/test division (the TRAIN "
        "and TEST files of a UCR/UEA data set) as the sealed test set; validation is drawn "
        "from the source's train part with the train and val fractions.",
    )
    duplicates: Literal["refuse", "remove", "accept"] = Field(
        "refuse",
        description="Test samples that duplicate train/val samples: refuse the "
        "split, remove them from test (logged), or accept them (needs duplicates_reason).",
    )
    duplicates_reason: str | None = Field(
        None,
        description="Why test samples that duplicate "
        "train/val samples are kept (with `duplicates: accept`; recorded).",
    )

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> Split:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + val + test must be 1.0, got {total:.4f}; adjust the fractions"
            )
        return self


class ModelSpec(Strict):
    """Step 5: the network, by registry name, with its keyword arguments."""

    name: str = Field(
        "small_cnn",
        description="A key of `dlw models`, or your own network "
        'as "module:function" (a module next to dlworkflow.yaml is found; '
        "see Step 5).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of the "
        "model (`dlw models`); unknown ones are refused with the ones the model takes.",
    )
    transfer: Literal["auto", "frozen", "finetune", "gradual", "scratch"] = Field(
        "auto",
        description="Pretrained models: frozen (head on cached backbone features), "
        "finetune (all layers, discriminative learning rates), gradual (head first, then "
        "all layers), scratch (random init); auto: frozen for small datasets, else gradual. "
        "Models without pretrained weights always train from scratch.",
    )
    backbone_lr_factor: float = Field(
        0.1, gt=0, le=1, description="finetune / gradual: backbone LR = this x head LR."
    )
    head_epochs: int = Field(1, ge=1, description="gradual: epochs with the backbone frozen.")


class Augment(Strict):
    """Step 6: batched augmentation on the training device; 0 switches one off. Images (kornia):
    flip to cutmix, mosaic; series: jitter to window_slice; audio: gain_db to time_mask; mixup
    applies to images, series and audio. Options of another kind of data are not applied."""

    flip: float = Field(0.0, ge=0, le=1, description="Probability of a horizontal flip.")
    rotation: float = Field(0.0, ge=0, le=180, description="Max rotation, degrees.")
    resized_crop: float = Field(
        0.0, ge=0, lt=1, description="Random resized crop: smallest area kept is 1 - this."
    )
    translate: float = Field(0.0, ge=0, le=0.5, description="Max shift, fraction of the side.")
    color_jitter: float = Field(0.0, ge=0, le=1, description="Brightness/contrast strength.")
    erasing: float = Field(0.0, ge=0, le=1, description="Probability of random erasing.")
    mixup: float = Field(0.0, ge=0, description="Mixup alpha (0: off).")
    cutmix: float = Field(0.0, ge=0, description="CutMix alpha (0: off).")
    mosaic: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Object detection: probability that a training image becomes a 2x2 "
        "mosaic of four (boxes moved with them).",
    )
    # series (sequence-classification): an op whose strength is above 0 is applied to each
    # training series with probability 1/2, within its real length (train/augment_series.py)
    jitter: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Series: Gaussian noise with this std relative to each channel's std "
        "(e.g. 0.03).",
    )
    scaling: float = Field(
        0.0, ge=0, le=1, description="Series: std of one random factor around 1 per channel."
    )
    magnitude_warp: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Series: std of a smooth random curve around 1 multiplying each channel "
        "(e.g. 0.2).",
    )
    time_warp: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Series: std of a smooth random log-speed warping time (ends fixed; e.g. 0.2).",
    )
    window_slice: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Series: share of the length a random window cuts off before it is "
        "stretched back to the full length (e.g. 0.1).",
    )
    # audio (audio-classification): waveforms in the trainer, SpecAugment inside the model
    gain_db: float = Field(
        0.0, ge=0, le=40, description="Audio: random gain of each clip, up to +-this many dB."
    )
    time_shift: float = Field(
        0.0,
        ge=0,
        le=0.5,
        description="Audio: random circular shift of each clip, up to this share of its length.",
    )
    noise_snr_db: float = Field(
        0.0,
        ge=0,
        le=60,
        description="Audio: white noise mixed into half of the clips at a signal-to-noise ratio "
        "drawn from this to this + 20 dB (0: off).",
    )
    freq_mask: int = Field(
        0,
        ge=0,
        le=64,
        description="Audio SpecAugment: two frequency masks of up to this many mels.",
    )
    time_mask: int = Field(
        0,
        ge=0,
        le=500,
        description="Audio SpecAugment: two time masks of up to this many frames.",
    )


class Train(Strict):
    """Step 6: how the network is trained."""

    epochs: int = Field(
        15, ge=1, le=10_000, description="Most epochs; early stopping may end sooner."
    )
    budget_minutes: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Time budget of one training run: it stops after the epoch that reaches "
        "it, keeps the best epoch and records that it stopped for the budget (`dlw train "
        "--budget`). null: 10 minutes on a CPU, 60 on a GPU.",
    )
    batch_size: int = Field(
        64,
        ge=1,
        description="Samples per batch: the global batch, cut into "
        "one slice per process with `dlw train --devices N`.",
    )
    optimizer: Literal["adamw", "sgd"] = Field(
        "adamw", description="adamw (AdamW) or sgd (SGD, Nesterov momentum 0.9)."
    )
    learning_rate: float = Field(
        2e-3,
        gt=0,
        description="Learning rate (of the head, for "
        "pretrained models); `dlw lr-find` suggests one.",
    )
    weight_decay: float = Field(1e-4, ge=0, description="Weight decay of the optimizer.")
    early_stopping_patience: int = Field(
        4, ge=1, description="Stop after this many epochs without a better validation metric."
    )
    schedule: Literal["cosine", "onecycle", "plateau", "constant"] = Field(
        "cosine",
        description="Learning-rate schedule: cosine (per epoch, to 0), onecycle (per "
        "step), plateau (x0.1 when the validation metric stalls) or constant.",
    )
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy loss (0: off)."
    )
    grad_clip: float | None = Field(None, gt=0, description="Max gradient norm; null: off.")
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Validate and keep an exponential moving average of the weights, with "
        "this decay per optimizer step (0.9 averages about the last 10 steps; 0.999 suits "
        "long runs): it damps the noise of a high learning rate. null: off.",
    )
    accumulate: int = Field(1, ge=1, description="Batches per optimizer step.")
    class_weights: Literal["none", "balanced"] = Field(
        "none", description="balanced: loss weights inverse to class frequency (imbalance)."
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on a GPU that supports it, else fp32."
    )
    channels_last: bool | Literal["auto"] = Field(
        "auto", description="channels-last memory format; auto: on a GPU for conv nets."
    )
    compile: bool | Literal["auto"] = Field(
        "auto",
        description="torch.compile the model; auto: on a GPU when the run is long enough "
        "to repay the compile time (>= 6,000 optimizer steps).",
    )
    device: str = Field("auto", description="auto: cuda when available, else cpu.")
    threads: int | None = Field(None, ge=1, description="CPU threads; null: all cores.")
    sync_batchnorm: bool = Field(
        True,
        description="Multi-process runs on GPUs (`dlw train --devices/--nnodes`): batch norm "
        "normalises with the whole global batch's statistics (SyncBatchNorm), as one process "
        "does; the saved model has plain batch norms. On CPU (gloo), each process uses its "
        "slice's statistics.",
    )


class Evaluate(Strict):
    """Step 7: how the one-time test is judged."""

    bootstrap_samples: int = Field(
        1000,
        ge=100,
        le=100_000,
        description="Bootstrap resamples behind every confidence interval.",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Level of the bootstrap confidence intervals."
    )
    gate_on: Literal["value", "lower_bound"] = Field(
        "value",
        description="What must meet the target for PASS: the test value, or the lower "
        "bound of its bootstrap confidence interval (stricter).",
    )
    temperature_scaling: bool = Field(
        False,
        description="Fit a temperature on validation logits (minimum NLL) and report "
        "calibration after scaling; `dlw test` applies the validation temperature.",
    )
    slices: list[str] = Field(
        default_factory=list,
        description="Manifest columns (or tabular feature names) to "
        "report the primary metric for, per value (numeric columns: per quartile).",
    )
    auto_slices: bool = Field(
        True,
        description="With evaluate.slices empty: slice by what the data has (image size and "
        "brightness, source folder or addition, group column, text length, the most important "
        "table features) and flag the worst slice whose interval lies below the overall metric.",
    )
    importance: bool = Field(
        True,
        description="Measure which inputs the model relies on, on validation: permutation "
        "importance with intervals (tables), occlusion or channel ablation (images), token "
        "ablation (texts).",
    )
    slice_min_samples: int = Field(
        20, ge=1, description="Slices with fewer samples are skipped (with a note)."
    )
    baselines: bool = Field(
        True,
        description="Compare with the majority class and a logistic regression "
        "trained on the train split (pixels, table encoding or TF-IDF).",
    )


class Serve(Strict):
    """Step 7: `dlw serve`, secure by default (local only, bearer token, limits)."""

    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to bind; 127.0.0.1 "
        "keeps the server local (0.0.0.0 exposes it to the network).",
    )
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    token: str | None = Field(
        None,
        min_length=16,
        description="Bearer token; null: env DLW_SERVE_TOKEN, else one is "
        "generated and kept in .dlw/serve/token (mode 0600; only its path and first 4 "
        "characters are shown). Prefer the env "
        "variable: this file is usually in git.",
    )
    max_body_mb: float = Field(16.0, gt=0, le=1024, description="Largest request body, MB.")
    max_batch: int = Field(
        32,
        ge=1,
        le=1024,
        description="Most items in one request, and in one micro-batched ONNX call.",
    )
    max_wait_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="How long the first request of a micro-batch waits for others to join it.",
    )
    timeout_s: float = Field(10.0, gt=0, le=600, description="Requests slower than this get 504.")
    max_image_pixels: int = Field(
        16_777_216,
        gt=0,
        description="Uploaded images with more "
        "pixels are refused before decoding (decompression bombs).",
    )
    accept_dicom: bool = Field(
        False,
        description="Accept DICOM uploads on the HTTP API (header checked against "
        "max_image_pixels before any pixel data is read; deflated DICOM refused).",
    )
    max_concurrency: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Most requests in flight at once; more get 503 with Retry-After.",
    )
    max_text_chars: int = Field(
        100_000, ge=1, description="Longest text in a request, in characters (413 beyond)."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Server processes sharing the port (each loads the model, "
        "micro-batches its own requests and writes its own prediction log; /metrics sums "
        "them); null: one per core, at most 4.",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="ONNX Runtime threads per call and process; null: half of a "
        "process's share of the cores (the rest decode requests and run the loop).",
    )
    reload_interval_s: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="How often the champion pointer is checked for a new model (hot reload).",
    )
    log_predictions: bool = Field(
        True,
        description="Append every prediction (input summary "
        "statistics, never the input) to .dlw/serve/predictions.jsonl.",
    )
    log_max_mb: float = Field(50.0, gt=0, description="Rotate the prediction log at this size.")
    log_backups: int = Field(10, ge=1, le=1000, description="Rotated prediction logs kept.")


class Monitor(Strict):
    """Step 9: `dlw monitor`, drift of live traffic against the validation reference."""

    alpha: float = Field(
        0.01,
        gt=0,
        lt=0.5,
        description="Family-wise false-alarm level: the "
        "chance that in-distribution traffic raises any statistical alert "
        "(Bonferroni over the tests that run).",
    )
    min_samples: int = Field(
        100,
        ge=10,
        description="Fewer live predictions than this: no test runs (exit 0, 'not enough data').",
    )
    window: int | None = Field(
        None, ge=10, description="Only the newest N predictions; null: all of them (after --since)."
    )
    reference_samples: int = Field(
        2000, ge=50, description="Validation samples (at most) that form the reference."
    )
    psi_threshold: float = Field(
        0.2,
        gt=0,
        description="Input drift needs a population "
        "stability index of at least this, besides significance.",
    )
    mmd_permutations: int = Field(
        200,
        ge=50,
        le=10_000,
        description="Permutations of the "
        "embedding MMD test (at least; more are drawn while the "
        "p-value could still reach alpha / m).",
    )
    mmd_max_samples: int = Field(
        400, ge=50, le=5000, description="Samples per side in the MMD test (a seeded subsample)."
    )
    prediction_shift: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Predicted-class shift needs a total variation distance of at least this.",
    )
    confidence_drop: float = Field(
        0.05, gt=0, le=1, description="Mean confidence must fall by at least this to alert."
    )
    ood_reference_rate: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="The out-of-distribution threshold flags this fraction of the reference.",
    )
    ood_rate_excess: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="The live OOD rate must exceed the reference rate by at least this to alert.",
    )
    metric_drop: float = Field(
        0.05,
        gt=0,
        le=1,
        description="With --labels: alert when the "
        "live metric's interval lies this far on the worse side of the "
        "test estimate: an amount for metrics between 0 and 1 (accuracy, "
        "F1), a fraction of the test value for unbounded ones (RMSE, MAE: "
        "0.05 = 5% worse).",
    )
    max_model_age_days: float | None = Field(
        90.0,
        gt=0,
        description="Alert when the champion was exported longer ago than this; null: never.",
    )
    buckets: int = Field(20, ge=2, le=200, description="Time buckets of the report's plots.")
    webhook: str | None = Field(
        None, description="POST the alert as JSON to this URL (http or https)."
    )
    webhook_token_env: str | None = Field(
        None,
        pattern=r"^DLW_[A-Z0-9_]+$",
        description="Environment variable (its name starts with DLW_) with a bearer token for "
        "the webhook; the token is sent only over https.",
    )


class Retrain(Strict):
    """Step 9: `dlw retrain`, champion against challenger."""

    margin: float = Field(
        0.005,
        ge=0,
        le=1,
        description="The challenger must beat the champion "
        "by at least this on the primary metric to be promoted.",
    )
    compare_on: Literal["all", "test", "fresh"] = Field(
        "all",
        description="Where champion and challenger are compared: the sealed test set, "
        "the fresh slices, or both together.",
    )
    warm_start: bool = Field(
        False,
        description="Start the challenger from the champion's "
        "weights (same model and classes) instead of the usual init.",
    )
    epochs: int | None = Field(
        None,
        ge=1,
        description="Epochs of the challenger's training "
        "(null: train.epochs). A warm-started challenger fine-tunes, "
        "and usually needs fewer than a model trained from scratch.",
    )


class ParamSpec(Strict):
    """One dimension of the search space of `dlw tune`."""

    type: Literal["log_uniform", "uniform", "int", "categorical"] = Field(
        ..., description="log_uniform, uniform, int (with `step`) or categorical (with `choices`)."
    )
    low: float | None = Field(
        None, description="Lower end of the range (log_uniform: > 0); below `high`."
    )
    high: float | None = Field(None, description="Upper end of the range.")
    step: int | None = Field(None, ge=1, description="int: the step between values.")
    choices: list[Any] | None = Field(None, description="categorical: the values to try.")

    @model_validator(mode="after")
    def _check(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs `choices`")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a {self.type} parameter needs low < high")
        elif self.type == "log_uniform" and self.low <= 0:
            raise ValueError("a log_uniform parameter needs low > 0")
        return self

    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range (int, uniform, log_uniform): the validator requires both."""
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter has no low and high")
        return self.low, self.high


class Tune(Strict):
    """Step 6: `dlw tune`, hyperparameter search on the validation split (Optuna; Ray Tune)."""

    space: dict[str, ParamSpec] = Field(
        default_factory=dict,
        description="Dotted config keys to search, e.g. "
        "train.learning_rate: {type: log_uniform, low: 1.0e-4, high: 1.0e-2}.",
    )
    trials: int = Field(
        20,
        ge=1,
        description="Trials in the study, in total (complete and "
        "pruned; a resumed study counts the earlier ones).",
    )
    timeout_s: float | None = Field(None, gt=0, description="Stop starting trials after this.")
    epochs: int | None = Field(
        None, ge=1, description="train.epochs of each trial; null: train.epochs."
    )
    sampler: Literal["tpe", "random"] = Field(
        "tpe",
        description="tpe (Optuna's multivariate TPE, seeded; its start-up trials are random "
        "search's first trials of the same seed) or random. On bench/tune.py (digits, 40 "
        "seeds) TPE reached the target in 0.60 of random search's trials; TPE with one "
        "density per parameter or Sobol start-up trials did worse.",
    )
    pruner: Literal["median", "asha", "none"] = Field(
        "median",
        description="Stops unpromising "
        "trials on the validation metric of each epoch: median (after startup_trials complete "
        "trials, a trial below the median of earlier trials at the same epoch stops after "
        "warmup_epochs), asha (asynchronous successive halving: after warmup_epochs, then at "
        "3x, 9x..., only the top third goes on) or none. Measured: median and none needed the "
        "same trials, median 0.9x the epochs; asha 0.23 trials more (within noise) and 0.77x "
        "median's epochs: pick it when epochs are what count.",
    )
    startup_trials: int = Field(
        3,
        ge=0,
        description="Random trials before TPE models the space (and the median pruner "
        "prunes); each is a trial TPE cannot aim. Measured: 1 and 3 alike (8.8 / 8.9 trials "
        "to the target, 40 seeds); 5 and 10 no better (20 seeds).",
    )
    warmup_epochs: int = Field(1, ge=0, description="Epochs of a trial that are never pruned.")
    weight_average: bool = Field(
        False,
        description="Trials keep train.ema_decay's weight average (true), or train and are "
        "scored and pruned on the live weights (false; unless tune.space searches "
        "train.ema_decay). `dlw train` keeps train.ema_decay either way. On 3-epoch trials the "
        "average cost TPE 1.85 trials to the target (bench/tune.py, 40 seeds; random "
        "search unchanged).",
    )
    workers: int = Field(1, ge=1, description="Parallel trials on this machine (processes).")
    seed: int | None = Field(None, ge=0, description="Sampler seed; null: the project seed.")


class Tracking(Strict):
    uri: str | None = Field(None, description="MLflow tracking URI; null: sqlite:///mlruns.db.")
    experiment: str | None = Field(None, description="MLflow experiment; null: project name.")


AUDIT_IDS = (  # the 28 tests of the ML Test Score (dlworkflow/report/audit/rubric.py), by section
    "feature_schema",
    "features_beneficial",
    "feature_cost",
    "feature_requirements",
    "privacy_controls",
    "new_features_quickly",
    "feature_code_tested",
    "model_specs_reviewed",
    "offline_online_correlate",
    "hyperparameters_tuned",
    "staleness_impact_known",
    "simpler_model_not_better",
    "slice_quality",
    "inclusion_tested",
    "training_reproducible",
    "model_specs_unit_tested",
    "pipeline_integration_tested",
    "validated_before_serving",
    "model_debuggable",
    "canaried_before_serving",
    "rollback_possible",
    "dependency_changes_notified",
    "input_invariants_hold",
    "no_training_serving_skew",
    "models_not_too_stale",
    "numerically_stable",
    "compute_performance_not_regressed",
    "prediction_quality_not_regressed",
)


class AuditAnswer(Strict):
    """One ML Test Score test answered by hand (`dlw audit`): manual = done with the result
    documented (0.5 point), automated = run automatically and repeatedly (1 point)."""

    done: Literal["no", "manual", "automated"]
    note: str | None = Field(None, description="Where it is documented, or what runs it.")

    @model_validator(mode="after")
    def _note_when_done(self) -> AuditAnswer:
        if self.done != "no" and not (self.note and self.note.strip()):
            raise ValueError(
                f"done: {self.done} needs a note saying where it is documented or what runs it"
            )
        return self


_AUDIT_FIELDS: dict[str, Any] = {key: (AuditAnswer | None, None) for key in AUDIT_IDS}
Audit = create_model(  # one optional answer per test id; unknown ids are refused
    "Audit",
    __base__=Strict,
    __doc__="Step 8: the `dlw audit` checklist.",
    **_AUDIT_FIELDS,
)


class ProjectConfig(Strict):
    version: int = Field(SCHEMA_VERSION, description="Schema version of this file.")
    name: str = Field(
        ...,
        min_length=1,
        description="Project name (`dlw init`: the folder's "
        "name); the MLflow experiment unless `tracking.experiment` is set.",
    )
    task: TaskType = Field(
        "image-classification",
        description="What the project predicts; chosen "
        "by `dlw init --task`. Every step adapts to it.",
    )
    seed: int = Field(
        42,
        ge=0,
        description="Seed of the split, the initialisation, augmentation "
        "and tuning samplers; recorded with every step.",
    )
    problem: Problem = Field(default_factory=Problem)
    data: Data = Field(default_factory=Data)
    privacy: Privacy = Field(default_factory=Privacy)
    explore: Explore = Field(default_factory=Explore)
    split: Split = Field(default_factory=Split)
    model: ModelSpec = Field(default_factory=ModelSpec)
    augment: Augment = Field(default_factory=Augment)
    train: Train = Field(default_factory=Train)
    evaluate: Evaluate = Field(default_factory=Evaluate)
    serve: Serve = Field(default_factory=Serve)
    tune: Tune = Field(default_factory=Tune)
    monitor: Monitor = Field(default_factory=Monitor)
    retrain: Retrain = Field(default_factory=Retrain)
    tracking: Tracking = Field(
        default_factory=Tracking, description="Where MLflow records the runs."
    )
    audit: Audit = Field(default_factory=Audit)

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, raw: Any) -> Any:
        return migrate(raw)

    def with_overrides(self, updates: dict[str, Any]) -> ProjectConfig:
        """A validated copy with dotted keys (``train.epochs``) replaced, for one run."""
        raw = self.model_dump(mode="json")
        for dotted, value in updates.items():
            node = raw
            *parents, last = dotted.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        return validate_config(raw, source="overrides")

    def setting(self, dotted: str) -> Any:
        """The value of a dotted key (``retrain.epochs``)."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, part)
        return node

    def with_settings_from(self, sources: Mapping[str, str]) -> ProjectConfig:
        """A copy in which keys take the values of other keys (``{"train.epochs":
        "retrain.epochs"}``): the settings a run used that read one key in place of another.
        A source that is null leaves its key as the file has it."""
        updates = {
            key: self.setting(src) for key, src in sources.items() if self.setting(src) is not None
        }
        return self.with_overrides(updates) if updates else self

    def section_hash(self, *sections: str) -> str:
        from dlworkflow.fileio import sha256_json

        dumped = self.model_dump(mode="json")
        return sha256_json({name: dumped[name] for name in sections})


def settings_sources(inputs: Mapping[str, Any]) -> dict[str, str]:
    """The keys a ledger run read from other keys ({"train.epochs": "retrain.epochs"}), from
    its inputs (`Project.step(settings_from=...)` writes them as "setting:<key>")."""
    return {
        k.removeprefix(SETTING_INPUT): str(v)
        for k, v in inputs.items()
        if k.startswith(SETTING_INPUT) and v
    }


def migrate(raw: Any) -> Any:
    """Bring an older config to SCHEMA_VERSION. Version 1 is the first: nothing to do yet."""
    if not isinstance(raw, dict):
        return raw
    version = raw.get("version", SCHEMA_VERSION)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ValueError(
            f"config version {version} is newer than this dlworkflow understands "
            f"({SCHEMA_VERSION}); upgrade dlworkflow"
        )
    return raw


def validate_config(raw: Any, *, source: str = CONFIG_FILE) -> ProjectConfig:
    """Validate a parsed YAML mapping; every problem becomes one ConfigError with a fix."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source} does not hold a mapping of settings.",
            expected="a YAML mapping (key: value lines)",
            received=type(raw).__name__,
            fix="run `dlw init` to write a fresh, commented dlworkflow.yaml",
        )
    try:
        config = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, source) from None
    _check_criterion(config, source)
    return config


def _check_criterion(config: ProjectConfig, source: str) -> None:
    """The primary metric is one of the task's, and the target a value it can take."""
    from dlworkflow.tasks import task_of

    problem, task = config.problem, task_of(config.task)
    if problem.primary_metric is None:
        return
    try:
        if problem.target is None:
            task.metric(problem.primary_metric)
        else:
            task.check_criterion(problem.primary_metric, problem.target)
    except ConfigError as exc:
        key = (
            "problem.target" if exc.what.startswith("problem.target") else "problem.primary_metric"
        )
        detail = {
            "path": key,
            "line": f"{key}: {exc.what}",
            "expected": exc.expected or "",
            "received": exc.received or "",
            "fix": exc.fix or "",
        }
        raise invalid_config(source, [detail]) from None


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    return invalid_config(source, [_describe(err) for err in exc.errors()])


def invalid_config(source: str, problems: list[dict[str, str]]) -> ConfigError:
    """One ConfigError for the problems of a config file, each said once: one problem as
    what (its path), expected, received and fix; several as one line each (with its
    suggestion) and one fix. Every detail stays in context["errors"] (--json)."""
    if len(problems) == 1:
        (p,) = problems
        return ConfigError(
            f"{source} is invalid: {p.get('headline') or p['line']}",
            expected=p["expected"] or None,
            received=p.get("shown_received", p["received"]) or None,
            fix=p["fix"] or None,
            context={"errors": problems},
        )
    lines = "\n".join(f"  - {p.get('short') or p['line']}" for p in problems)
    return ConfigError(
        f"{source} is invalid ({len(problems)} problems):\n{lines}",
        fix=f"edit {CONFIG_FILE}; `dlw config schema` lists every key and what it allows",
        context={"errors": problems},
    )


def _describe(err: ErrorDetails) -> dict[str, str]:
    loc = tuple(str(part) for part in err["loc"])
    path = ".".join(loc) or "(top level)"
    received = repr(err.get("input"))
    if len(received) > 80:
        received = received[:77] + "..."
    if err["type"] == "extra_forbidden":
        valid = _valid_keys(loc[:-1])
        near = closest(loc[-1], valid)
        ordered = near + [k for k in valid if k not in near]
        section = ".".join(loc[:-1]) or "the top level"
        guess = f"did you mean {', '.join(near)}?" if near else "no key here is close."
        return {
            "path": path,
            "line": f"{path}: unknown key",
            "short": f"{path}: unknown key; {guess}",
            "headline": f"{path}: unknown key",
            "expected": f"a key of {section} (closest first): {', '.join(ordered)}",
            "received": repr(loc[-1]),
            "shown_received": "",  # the headline names it
            "fix": f"{guess} Rename or remove it in {CONFIG_FILE}",
        }
    expected = err["msg"]
    return {
        "path": path,
        "headline": path,
        "line": f"{path}: {expected} (received {received})",
        "expected": expected,
        "received": received,
        "fix": (
            f"edit `{path}` in {CONFIG_FILE}; `dlw config schema` lists what is allowed"
            if loc
            else expected.removeprefix("Value error, ")
        ),
    }


def _valid_keys(loc: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = ProjectConfig
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def json_schema() -> dict[str, Any]:
    return ProjectConfig.model_json_schema()


def config_path(root: Path) -> Path:
    return root / CONFIG_FILE


def yaml_diff(before: str, after: str, *, to: str = "after") -> str:
    """The unified diff of two versions of dlworkflow.yaml ("" when equal)."""
    import difflib

    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{CONFIG_FILE} (before)",
            tofile=f"{CONFIG_FILE} ({to})",
        )
    )
