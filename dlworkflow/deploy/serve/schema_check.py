"""Requests checked against the feature schema the model's data had (metadata.json "schema",
inferred by `dlw ingest`, dlworkflow/data/schema.py).

* hard expectations: 422 "schema_violation", naming the item, the field and the expectation,
  before anything is decoded: a categorical value never seen (the model has no input for it);
  wrong types, unknown fields and missing columns are refused by the earlier checks;
* soft expectations: the item is served; what it breaks (a number outside the range seen, an
  image size or text length outside it, an image of a kind never seen (colour for a model
  of gray images: the runtime converts every mode to the model's channels, a contract
  clients rely on), an image format never seen, a value missing where none was) is returned
  per item, logged with the prediction (record "input" -> "invariants"), and counted by the
  dlw_input_invariant_violations metric, for `dlw monitor` and the audit.

(At ingest an image of a kind never seen is a hard breach: training data of a new kind is a
change that needs a decision, `dlw ingest --accept-schema`.)

Exports made before the schema travelled with the model carry none: nothing is checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlworkflow.data.schema import channel_kind, soft_breaches
from dlworkflow.deploy.serve.problems import ApiError, clip

if TYPE_CHECKING:
    from dlworkflow.deploy.serve.inputs import ImageHeader


def check_items(
    schema: dict[str, Any] | None,
    modality: str,
    values: list[Any],
    *,
    headers: list[ImageHeader] | None = None,
) -> list[list[str]]:
    """The soft breaches of each item (ApiError 422 for the first hard one). Images are
    checked by their `headers` (inputs.image_headers, read once per request)."""
    if not schema or modality in ("sequence", "audio"):  # checked by the bundle's prepare_*
        return [[] for _ in values]
    if modality == "image":
        if headers is None:
            raise ValueError("images are checked by their headers (inputs.image_headers)")
        return [_image(schema, header) for header in headers]
    if modality == "text":
        return [soft_breaches(schema, {"chars": len(text)}, manifest=False) for text in values]
    return [_row(schema, i, row) for i, row in enumerate(values)]


def _image(schema: dict[str, Any], header: ImageHeader) -> list[str]:
    image = schema.get("image") or {}
    item: dict[str, Any] = {"format": header.format}
    item["width"], item["height"] = header.size
    breaches = soft_breaches(schema, item, manifest=False)
    kinds = set(image.get("channels") or [])
    mode = header.mode  # DICOM: None (its size is all its header check read)
    if mode is not None and kinds and channel_kind(mode) not in kinds:
        breaches.append(f"{channel_kind(mode)} image (mode {mode}) never seen")
    return breaches


def _row(schema: dict[str, Any], index: int, row: dict[str, Any]) -> list[str]:
    features = schema.get("features") or {}
    for key, value in row.items():
        name = key.removeprefix("f:")
        spec = features.get(name) or {}
        allowed = spec.get("values") if spec.get("type") == "category" else None
        if allowed is not None and value is not None and str(value).strip() not in allowed:
            shown = ", ".join(allowed[:10]) + (" ..." if len(allowed) > 10 else "")
            raise ApiError(
                422,
                "schema_violation",
                f"Row {index}, field {name!r} has a value never seen in the training data "
                "(its feature schema).",
                expected=clip(f"rows[{index}].{name}: one of {shown} (or null)", 200),
                received=clip(repr(value)),
                fix="send one of the values the model knows (null when unknown), or retrain "
                "with the new value (`dlw ingest --accept-schema`, then train and export)",
            )
    named = {key.removeprefix("f:"): value for key, value in row.items()}
    return soft_breaches(schema, named, manifest=False)


def with_invariants(summaries: list[dict[str, Any]], soft: list[list[str]]) -> None:
    """Each breach list joins its item's log summary ("invariants"), when it has one."""
    for summary, breaches in zip(summaries, soft):
        if breaches:
            summary["invariants"] = breaches
