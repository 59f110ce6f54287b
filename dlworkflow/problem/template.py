"""The commented dlworkflow.yaml that `dlw init` writes: step 1 asks its questions first."""

from __future__ import annotations

TEMPLATE = """\
# dlworkflow project: {name}
# Every setting of the workflow lives here; `dlw config show` prints them all with defaults,
# `dlw config schema` prints what is allowed. Keep this file in git.
version: 1
name: {name}
task: {task}
seed: 42

# Step 1 - define the problem and what success is, BEFORE looking at the data.
# `dlw test` refuses to run until primary_metric and target are set.
# Set them here or with:  {define_hint}
problem:
  # The objective in plain words: what decision or task does the model support?
  objective: null
{metric_help}
  primary_metric: null
  # The value of the primary metric that counts as success (0 to 1), agreed with the
  # people who decide on the result.
  target: null
  constraints:
    max_latency_ms: null      # largest acceptable CPU latency for one sample, in ms
    max_model_size_mb: null   # largest acceptable exported model size, in MB
  # Who is affected by the result and who decides on it.
  constituencies: []
  # What you take for granted (data is representative, labels are correct, ...).
  assumptions: []
  # none, pii (personal data) or phi (patient data).
  data_sensitivity: none

# Step 2 - get data:  {ingest_hint}dlw ingest FOLDER | dlw ingest FILE.csv
data:
  source: null
  path_column: path
  label_column: label
  group_column: null   # a CSV column that ties samples together (patient, session, ...)
{data_extra}
# Step 4 - prepare: stratified, deterministic split; the test set is sealed.
split:
  train: 0.7
  val: 0.15
  test: 0.15

# Steps 5-6 - the network (`dlw models` lists them) and how it is trained.
model:
  name: {model}
{augment}train:
  epochs: {epochs}
  batch_size: {batch_size}
  learning_rate: {learning_rate}
{train_extra}"""

METRIC_HELP = """\
  # What is judged: accuracy, balanced_accuracy, macro_f1 or auroc.
  # Prefer balanced_accuracy or macro_f1 when classes are imbalanced."""

# Dense targets (Task.kind): what `dlw init --task` writes beyond the common template: the
# annotations, the network's input size, augmentation that moves the targets with the
# pixels, and training settings for a pretrained encoder with a new dense head.
DENSE = {
    "detection": {
        "metric_help": """\
  # What is judged: map (COCO mAP@[.5:.95]) or map50 (mAP at IoU 0.5); each has a
  # bootstrap interval over images.""",
        "data_extra": """\
  annotations: null    # boxes: a COCO JSON, a folder of VOC XML or YOLO txt, or a CSV of
                       # path,xmin,ymin,xmax,ymax,label (null: found beside the images)
  tiles: null          # large images: {{size: 400, overlap: 50}} cuts them into tiles
  image:
    size: [320, 320]   # [height, width] the network sees
""",
        "augment": """\
augment:               # boxes move with the pixels; no rotation for boxes
  flip: 0.5
  translate: 0.1
  color_jitter: 0.2
  mosaic: 0.25
""",
        "epochs": 30,
        "batch_size": 16,
        "learning_rate": 0.001,
        "train_extra": "",
    },
    "segmentation": {
        "metric_help": """\
  # What is judged: miou (mean IoU over the classes), dice or pixel_accuracy; each has a
  # bootstrap interval over images.""",
        "data_extra": """\
  masks: null          # index or palette PNG masks matched by name, or a CSV image,mask
  ignore_index: 255    # mask value that is not judged nor trained on
  image:
    size: [256, 256]   # [height, width] the network sees
""",
        "augment": """\
augment:               # geometric ops move the mask with the image; colour: image only
  flip: 0.5
  rotation: 10
  translate: 0.1
  color_jitter: 0.2
""",
        "epochs": 30,
        "batch_size": 16,
        "learning_rate": 0.001,
        "train_extra": "",
    },
}
COMMON = {
    "metric_help": METRIC_HELP,
    "data_extra": "",
    "augment": "",
    "epochs": 15,
    "batch_size": 64,
    "learning_rate": 0.002,
    "train_extra": "",
}
# Image classification validates and keeps an average of the weights: on MNIST-5k it reaches
# 97% validation accuracy at a median of 3 epochs over init seeds, the live weights at 4
# (3 to 6; bench/mnist_time_to_97.py), for the same final accuracy.
BY_TASK = {
    "image-classification": {
        **COMMON,
        "train_extra": "  ema_decay: 0.9  # validate and keep a moving average of the weights\n",
    },
}


def render(*, name: str, task: str, model: str = "small_cnn") -> str:
    from dlworkflow.tasks import TASKS

    known = TASKS.get(task) if task in TASKS else None
    hint = known.define_hint() if known else "dlw define --metric accuracy --target 0.95"
    settings = DENSE.get(known.kind, BY_TASK.get(task, COMMON)) if known else COMMON
    from dlworkflow.datasets.catalog import builtin_example

    example = builtin_example(task)

    return TEMPLATE.format(
        name=name,
        task=task,
        model=model,
        define_hint=hint,
        ingest_hint=f"dlw ingest builtin:{example} | " if example else "",
        **settings,
    )
