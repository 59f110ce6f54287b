"""The one config schema: defaults, unknown keys with suggestions, types, ranges, versions."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from dlworkflow.config import SCHEMA_VERSION, json_schema, validate_config
from dlworkflow.errors import ConfigError, CriterionMissingError


def _error(raw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        validate_config(raw)
    return info.value


def test_defaults_validate_to_best_practice_values():
    config = validate_config({"name": "p"})
    assert config.version == SCHEMA_VERSION == 1
    assert config.seed == 42
    assert config.task == "image-classification"
    assert (config.split.train, config.split.val, config.split.test) == (0.70, 0.15, 0.15)
    assert config.split.stratify is True
    assert config.data.source is None
    assert config.model.name == "small_cnn"
    assert config.train.epochs == 15
    assert config.problem.has_success_criterion() is False
    # the full dump of the defaults validates again to the same config
    assert validate_config(config.model_dump(mode="json")) == config


def test_name_is_required():
    err = _error({})
    assert "name" in str(err)


@pytest.mark.parametrize(
    ("raw", "path", "suggestion"),
    [
        ({"name": "p", "trian": {"epochs": 3}}, "trian", "train"),
        ({"name": "p", "train": {"epoch": 3}}, "train.epoch", "epochs"),
        ({"name": "p", "data": {"sorce": "x"}}, "data.sorce", "source"),
        (
            {"name": "p", "problem": {"constraints": {"max_latency": 5}}},
            "problem.constraints.max_latency",
            "max_latency_ms",
        ),
    ],
)
def test_unknown_key_names_its_path_and_the_closest_valid_name(raw, path, suggestion):
    err = _error(raw)
    text = str(err)
    assert f"{path}: unknown key" in text
    assert f"did you mean {suggestion}" in text
    problem = err.context["errors"][0]
    assert problem["line"].startswith(f"{path}:")
    assert suggestion in problem["expected"]  # the list of valid keys at that level


def test_unknown_key_suggestion_lists_valid_keys_of_the_right_level():
    err = _error({"name": "p", "train": {"epoch": 3}})
    expected = err.context["errors"][0]["expected"]
    assert "batch_size" in expected and "learning_rate" in expected
    assert "tracking" not in expected  # top-level keys are not offered inside train
    assert expected.index("epochs") < expected.index("batch_size")  # the closest first


def test_a_config_error_says_each_thing_once_in_about_six_lines_at_80_columns():
    import textwrap

    err = _error({"name": "p", "train": {"epocs": 3}})
    text = err.render()
    assert text.count("learning_rate") == 1  # the valid keys, listed once
    assert text.count("did you mean epochs") == 1
    wrapped = [w for line in text.splitlines() for w in textwrap.wrap(line, 80)]
    assert len(wrapped) <= 6, "\n".join(wrapped)
    two = _error({"name": "p", "train": {"epocs": 3, "batch_size": 0}}).render()
    assert two.count("did you mean epochs") == 1 and "2 problems" in two
    assert len([w for line in two.splitlines() for w in textwrap.wrap(line, 80)]) <= 6


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"name": "p", "train": {"epochs": "many"}}, "train.epochs"),
        ({"name": "p", "train": {"epochs": 0}}, "train.epochs"),
        ({"name": "p", "problem": {"target": "high"}}, "problem.target"),
        ({"name": "p", "problem": {"primary_metric": "f1"}}, "problem.primary_metric"),
        ({"name": "p", "seed": -1}, "seed"),
        ({"name": "p", "data": {"max_image_pixels": 0}}, "data.max_image_pixels"),
        ({"name": "p", "evaluate": {"confidence": 1.2}}, "evaluate.confidence"),
    ],
)
def test_wrong_type_or_range_names_the_path(raw, path):
    err = _error(raw)
    assert err.context["errors"][0]["line"].startswith(f"{path}:")
    assert f"edit `{path}`" in err.fix


def test_every_problem_is_reported_not_only_the_first():
    err = _error({"name": "p", "trian": {}, "train": {"epochs": 0}})
    assert "(2 problems)" in str(err)
    lines = {e["line"].split(":")[0] for e in err.context["errors"]}
    assert lines == {"trian", "train.epochs"}


def test_split_fractions_must_sum_to_one():
    err = _error({"name": "p", "split": {"train": 0.5, "val": 0.2, "test": 0.2}})
    assert "must be 1.0" in str(err)
    assert "0.9000" in str(err)
    assert err.context["errors"][0]["line"].startswith("split:")
    ok = validate_config({"name": "p", "split": {"train": 0.8, "val": 0.1, "test": 0.1}})
    assert ok.split.train == 0.8


def test_config_version_newer_than_supported_is_rejected_with_upgrade_hint():
    err = _error({"name": "p", "version": SCHEMA_VERSION + 1})
    assert f"config version {SCHEMA_VERSION + 1} is newer" in str(err)
    assert "upgrade dlworkflow" in str(err)
    assert validate_config({"name": "p", "version": SCHEMA_VERSION}).version == SCHEMA_VERSION


def test_non_mapping_is_rejected_with_a_fix():
    err = _error(["a", "b"])
    assert "mapping" in str(err)
    assert "dlw init" in err.fix


def test_json_schema_describes_every_section_and_forbids_extra_keys():
    schema = json_schema()
    json.dumps(schema)  # serialisable
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name"]
    for section in ("problem", "data", "split", "model", "train", "evaluate", "tracking"):
        assert section in schema["properties"]
    defs = schema["$defs"]
    assert defs["Train"]["properties"]["epochs"]["minimum"] == 1
    assert defs["Train"]["additionalProperties"] is False
    metric = defs["Problem"]["properties"]["primary_metric"]["anyOf"][0]
    from dlworkflow.tasks import task_names, task_of

    primaries = {m for t in task_names() for m in task_of(t).primary_metrics()}
    assert set(metric["enum"]) == primaries  # every task's primary metrics, no other


def test_config_objects_validate_assignments():
    config = validate_config({"name": "p"})
    with pytest.raises(ValidationError):
        config.train.epochs = 0
    assert config.train.epochs == 15


def test_require_success_criterion_says_how_to_write_one():
    config = validate_config({"name": "p", "problem": {"primary_metric": "auroc"}})
    with pytest.raises(CriterionMissingError) as info:
        config.problem.require_success_criterion(needed_by="`dlw test`")
    assert "problem.target" in str(info.value)
    assert "problem.primary_metric not" not in str(info.value)  # only the missing one
    assert "dlw define --metric" in info.value.fix
    full = validate_config({"name": "p", "problem": {"primary_metric": "auroc", "target": 0.8}})
    assert full.problem.require_success_criterion(needed_by="x") == ("auroc", 0.8)


def test_section_hash_depends_only_on_its_sections():
    base = validate_config({"name": "p"})
    other_train = validate_config({"name": "p", "train": {"epochs": 3}})
    other_split = validate_config({"name": "p", "split": {"train": 0.8, "val": 0.1, "test": 0.1}})
    assert base.section_hash("split", "seed") == other_train.section_hash("split", "seed")
    assert base.section_hash("split", "seed") != other_split.section_hash("split", "seed")
    assert base.section_hash("train") != other_train.section_hash("train")


def test_the_success_criterion_is_checked_against_the_task():
    """The metric must be one the task has, and the target a value that metric can take:
    accuracy 0 to 1, RMSE at least 0, in the target's units."""
    ok = validate_config(
        {
            "name": "p",
            "task": "tabular-regression",
            "problem": {"primary_metric": "rmse", "target": 3.5},
        }
    )
    assert ok.problem.target == 3.5
    with pytest.raises(ConfigError, match="problem.target 1.5 is not a possible accuracy"):
        validate_config({"name": "p", "problem": {"primary_metric": "accuracy", "target": 1.5}})
    with pytest.raises(ConfigError, match="problem.target -1 is not a possible rmse"):
        validate_config(
            {
                "name": "p",
                "task": "tabular-regression",
                "problem": {"primary_metric": "rmse", "target": -1},
            }
        )
    with pytest.raises(ConfigError, match="image-classification has no metric 'rmse'"):
        validate_config({"name": "p", "problem": {"primary_metric": "rmse"}})
    with pytest.raises(ConfigError, match="problem.primary_metric"):  # never primary
        validate_config(
            {
                "name": "p",
                "task": "tabular-multilabel",
                "problem": {"primary_metric": "hamming_loss", "target": 0.1},
            }
        )
