"""Request and response bodies of the API (they are also its OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictJSON(Strict):
    """One of images (base64), texts or rows; the model's modality decides which."""

    images: list[str] | None = Field(
        None, description="Images, each a base64-encoded file (PNG, JPEG, ...).")
    texts: list[str] | None = Field(None, description="Texts (text models).")
    rows: list[dict[str, Any]] | None = Field(
        None, description="Rows of named feature values (tabular models).")


class Prediction(Strict):
    id: str = Field(description="This prediction's id in the prediction log: send it back with "
                    "the true label (`dlw monitor --labels`, a CSV of id,label).")
    label: str
    confidence: float = Field(description="Probability of the predicted label.")
    probabilities: dict[str, float] = Field(description="Probability of every class.")


class PredictResponse(Strict):
    model_version: int
    predictions: list[Prediction]


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
    classes: list[str]
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
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                             "description": "One or several image files."}},
    "required": ["files"],
}


def predict_openapi() -> dict[str, Any]:
    """The request body of POST /v1/predict: JSON, or a multipart upload of image files."""
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
