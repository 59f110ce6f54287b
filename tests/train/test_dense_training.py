"""The training side of dense tasks (object detection, semantic segmentation): what `dlw init
--task` writes, the default tune space (boxes never rotate, mosaic is searched), the transfer
strategy (a dense head never trains on cached feature vectors), and the dense targets
encoded at the network's input size."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlworkflow.config import ProjectConfig, validate_config
from dlworkflow.problem.template import DENSE, TEMPLATE
from dlworkflow.train.tune.space import default_space
from dlworkflow.workspace import round_trip_yaml

DENSE_TASKS = {"detection": "object-detection", "segmentation": "semantic-segmentation"}


def _config(kind: str) -> ProjectConfig:
    text = TEMPLATE.format(
        name="p",
        task=DENSE_TASKS[kind],
        model="m",
        define_hint="dlw define",
        ingest_hint="",
        **DENSE[kind],
    )
    return validate_config(round_trip_yaml().load(text))


@pytest.mark.parametrize("kind", sorted(DENSE_TASKS))
def test_the_dense_template_sets_an_input_size_augmentation_and_small_batches(kind: str):
    cfg = _config(kind)
    assert cfg.data.image.size is not None and cfg.data.image.size[0] >= 256
    assert cfg.train.batch_size <= 16 and cfg.train.learning_rate <= 1e-3
    assert cfg.augment.flip and cfg.augment.color_jitter
    assert not (cfg.augment.mixup or cfg.augment.cutmix or cfg.augment.erasing)
    if kind == "detection":
        assert cfg.augment.rotation == 0 and cfg.augment.mosaic > 0
    else:
        assert cfg.augment.rotation > 0 and cfg.augment.mosaic == 0


def test_init_writes_the_task_default_model_and_metrics(tmp_path: Path):
    from dlworkflow.project import Project
    from dlworkflow.tasks import TASKS

    for kind, task in DENSE_TASKS.items():
        if task not in TASKS:
            pytest.skip(f"{task} is not registered yet")
        project = Project.init(tmp_path / kind, task=task)
        text = project.paths.config.read_text()
        assert f"name: {TASKS.get(task).default_model}" in text
        assert TASKS.get(task).define_hint() in text
        assert project.config.data.image.size is not None


def test_the_default_tune_space_searches_what_each_dense_target_takes():
    boxes = default_space(
        _config("detection"),
        strategy="gradual",
        modality="image",
        model_defaults={},
        kind="detection",
    )
    assert "augment.rotation" not in boxes.space  # a rotated box is not the object's box
    assert {"augment.mosaic", "augment.translate", "model.backbone_lr_factor"} <= set(boxes.space)
    assert "model.params.dropout" not in boxes.space  # the model has no dropout parameter
    masks = default_space(
        _config("segmentation"),
        strategy="frozen",  # a frozen backbone in the network still sees augmented images
        modality="image",
        model_defaults={"dropout": 0.1},
        kind="segmentation",
    )
    assert {"augment.rotation", "augment.translate", "model.params.dropout"} <= set(masks.space)
    assert "augment.mosaic" not in masks.space


def test_a_dense_head_is_never_trained_on_cached_feature_vectors(tmp_path: Path):
    from dlworkflow.project import Project
    from dlworkflow.train import strategies

    project = Project.init(tmp_path / "seg", task="semantic-segmentation")
    auto = strategies.choose(project, n_train=100)  # classification would pick frozen
    assert auto.name == "gradual" and "dense head" in auto.reason
    project.update_config({"model.transfer": "frozen"})
    frozen = strategies.choose(project, n_train=100)
    assert frozen.name == "frozen" and "no feature cache" in frozen.reason
    assert "augment is not applied" not in frozen.reason  # the images are augmented
