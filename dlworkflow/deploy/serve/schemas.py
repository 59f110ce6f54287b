"""Request and response bodies of the API (they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: One value of a series: a number, or null for a missing value.
_SERIES_VALUE = {"anyOf": [{"type": "number"}, {"type": "null"}]}
#: One series: a list of values (one channel), or a list of channel lists of one length.
SERIES_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": _SERIES_VALUE, "minItems": 1},
        {
            "type": "array",
            "items": {"type": "array", "items": _SERIES_VALUE, "minItems": 1},
            "minItems": 1,
        },
    ]
}


class PredictJSON(Strict):
    """One of images (base64), texts, rows, series or clips (base64); the model's modality
    decides which."""

    images: list[str] | None = Field(
        None, description="Images, each a base64-encoded file (PNG, JPEG, ...)."
    )
    texts: list[str] | None = Field(None, description="Texts (text models).")
    rows: list[dict[str, Any]] | None = Field(
        None, description="Rows of named feature values (tabular models)."
    )
    series: (
        Annotated[list[Any], WithJsonSchema({"type": "array", "items": SERIES_SCHEMA})] | None
    ) = Field(
        None,
        description="Series (sequence models), each a list of numbers (a one-channel series) "
        "or a list of channel lists of one length, in the model's channel order (GET "
        "/v1/model: input.shape). null marks a missing value: short inner gaps (at most "
        "preprocessing.max_gap steps) are filled by linear interpolation, as at training; "
        "steps that are null in every channel at the end are padding. Series of one request "
        "may differ in length.",
    )
    clips: list[str] | None = Field(
        None,
        description="Audio clips (audio models), each a base64-encoded WAV, FLAC or OGG file "
        "(or upload them as multipart `files`). They are decoded, mixed to mono, resampled "
        "and cropped or padded as at training (GET /v1/model: preprocessing).",
    )


class Prediction(Strict):
    """A classification model's prediction: the most probable class."""

    id: str = Field(
        description="This prediction's id in the prediction log: send it back with "
        "the true label (`dlw monitor --labels`, a CSV of id,label)."
    )
    label: str
    confidence: float = Field(description="Probability of the predicted label.")
    probabilities: dict[str, float] = Field(description="Probability of every class.")


class ValuePrediction(Strict):
    """A regression model's prediction: one number in the target's units."""

    id: str = Field(description="This prediction's id in the prediction log.")
    value: float = Field(
        description="The predicted value, in the target's units (the "
        "model's target scaling undone)."
    )


class LabelsPrediction(Strict):
    """A multi-label model's prediction: every label whose probability reaches its threshold."""

    id: str = Field(description="This prediction's id in the prediction log.")
    labels: list[str] = Field(
        description="The predicted labels (possibly none): each label "
        "whose probability reaches the threshold tuned for it on "
        "validation (GET /v1/model: metadata.outputs.target.thresholds)."
    )
    probabilities: dict[str, float] = Field(description="Probability of every label.")


class Box(Strict):
    """One detected object."""

    box: list[float] = Field(
        min_length=4,
        max_length=4,
        description="[x1, y1, x2, y2] in pixels of the image as sent (EXIF orientation "
        "applied): left, top, right, bottom.",
    )
    label: str = Field(description="The object's class.")
    score: float = Field(description="The detector's confidence in the box, 0 to 1.")


class BoxesPrediction(Strict):
    """An object-detection model's prediction: the boxes whose score reaches the threshold
    (tuned on validation, or the request's `?score_threshold=`), best first."""

    id: str = Field(description="This prediction's id in the prediction log.")
    boxes: list[Box] = Field(description="The detected objects (possibly none).")
    count: int = Field(description="The number of boxes.")


class MaskPrediction(Strict):
    """A semantic-segmentation model's prediction: a class for every pixel."""

    id: str = Field(description="This prediction's id in the prediction log.")
    mask_png: str = Field(
        description="Base64 of an 8-bit grayscale PNG at the image's size: each pixel's "
        "value is the index of its class in `classes` (the network's mask, resized by "
        "nearest neighbour)."
    )
    classes: list[str] = Field(description="The class of each mask value, by index.")
    class_share: dict[str, float] = Field(
        description="The share of the mask's pixels in each class (sums to 1)."
    )


class PredictResponse(Strict):
    model_version: int
    predictions: list[
        Prediction | ValuePrediction | LabelsPrediction | BoxesPrediction | MaskPrediction
    ] = Field(
        description="One per item, in order; its fields depend on the served model's task "
        "(GET /v1/model: task, outputs): classification label, confidence, probabilities; "
        "regression value; multi-label labels, probabilities; object detection boxes, count; "
        "semantic segmentation mask_png, classes, class_share."
    )


class ErrorBody(Strict):
    error: str = Field(description="Short machine-readable kind of error.")
    message: str = Field(description="What went wrong.")
    expected: str | None = None
    received: str | None = None
    fix: str | None = None


class Health(Strict):
    status: str
    model_version: int | None


class ModelInfo(Strict):
    version: int
    model: str | None
    task: str | None
    modality: str
    kind: str | None = Field(
        None,
        description="What is predicted: classification, regression, multilabel, detection or "
        "segmentation.",
    )
    classes: list[str] = Field(
        description="The name of each network output: the classes, the "
        'labels, or ["value"] for regression.'
    )
    outputs: list[str] = Field(
        default_factory=list, description="The same names: one per output of the model."
    )
    prediction: list[str] = Field(
        default_factory=list, description="The fields of each prediction, besides id."
    )
    verdict: str | None
    forced: dict[str, Any] | None
    metric: str | None
    test_value: float | None
    input: dict[str, Any] | None
    loaded_at: str
    limits: dict[str, Any]
    metadata: dict[str, Any]


MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "One or several image files (image models) or WAV, FLAC or OGG "
            "files (audio models).",
        }
    },
    "required": ["files"],
}


def predict_openapi() -> dict[str, Any]:
    """The request body of POST /v1/predict: JSON, or a multipart upload of image or audio
    files."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": PredictJSON.model_json_schema()},
                "multipart/form-data": {"schema": MULTIPART_SCHEMA},
            },
        },
    }


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}
