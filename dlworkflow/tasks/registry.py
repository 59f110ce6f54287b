"""The tasks `dlw init --task` offers, by name."""

from __future__ import annotations

from dlworkflow.registry import Registry
from dlworkflow.tasks.base import Task
from dlworkflow.tasks.classification import Classification
from dlworkflow.tasks.detection import Detection
from dlworkflow.tasks.multilabel import MultiLabel
from dlworkflow.tasks.regression import Regression
from dlworkflow.tasks.segmentation import Segmentation

TASKS: Registry[Task] = Registry("task")

for _task in (
    Classification(
        "image",
        default_model="small_cnn",
        description="one class per image (a folder of class sub-folders, or a "
        "table of paths and labels)",
    ),
    Classification(
        "text",
        default_model="minilm_classifier",
        description="one class per text (a table with a text and a label column)",
    ),
    Classification(
        "tabular",
        default_model="mlp",
        description="one class per table row (feature columns and a label column)",
    ),
    Classification(
        "sequence",
        default_model="resnet1d",
        description="one class per time series, uni- or multivariate, of fixed or variable "
        "length (UCR/UEA .ts files, a long or wide table, or .npy arrays and a labels CSV)",
    ),
    Classification(
        "audio",
        default_model="audio_efficientnet_lite0",
        description="one class per audio clip (a folder of class sub-folders of WAV, FLAC or "
        "OGG clips, or a table of paths and labels)",
    ),
    Regression(
        "tabular",
        default_model="mlp",
        description="one number per table row (feature columns and a numeric target column)",
    ),
    Regression(
        "image",
        default_model="small_cnn",
        description="one number per image (a table of paths and numeric targets)",
    ),
    MultiLabel(
        "tabular",
        default_model="mlp",
        description="a set of labels per table row (a delimited label column, or "
        "one-hot label columns)",
    ),
    MultiLabel(
        "image",
        default_model="small_cnn",
        description="a set of labels per image (a table of paths and a delimited "
        "label column, or one-hot label columns)",
    ),
    MultiLabel(
        "text",
        default_model="minilm_classifier",
        description="a set of labels per text (a table with a text column and a "
        "delimited label column, or one-hot label columns)",
    ),
    Detection(
        "image",
        default_model="efficientnet_lite0_detector",
        description="boxes and their classes in each image (COCO JSON, Pascal VOC XML, "
        "YOLO txt, or a CSV of boxes)",
    ),
    Segmentation(
        "image",
        default_model="efficientnet_lite0_unet",
        description="a class for every pixel (image and mask pairs, or COCO polygons)",
    ),
):
    TASKS.add(_task.name, _task)


def task_of(name: str) -> Task:
    """The Task of a `task:` name; UnknownKeyError with the closest names."""
    return TASKS.get(name)


def task_names() -> list[str]:
    return TASKS.names()
