"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis): no 5xx.

Schemathesis reads the schema the server publishes at /openapi.json and generates requests
that fit it (positive) and that break it (negative: wrong types, missing fields, odd media
types) for every operation; each response must be a documented non-5xx status with a body
that matches the schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from servekit import AUTH

OPERATIONS = [
    ("POST", "/v1/predict", 120),
    ("GET", "/v1/model", 15),
    ("GET", "/v1/health", 15),
    ("GET", "/metrics", 15),
]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
CASES = [
    (m, p, n, mode)
    for m, p, n in OPERATIONS
    for mode in (POSITIVE, NEGATIVE)
    if not (p == "/v1/health" and mode is NEGATIVE)
]  # no parameters to break
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_schema_lists_every_operation_and_the_bearer_scheme(make_app):
    schema = make_app().openapi()
    assert {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops} == {
        (m, p) for m, p, _ in OPERATIONS
    }
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}


@pytest.mark.parametrize(
    "method,path,examples,mode", CASES, ids=[f"{p}-{mode.value}" for _, p, _, mode in CASES]
)
def test_no_generated_request_makes_the_server_fail(make_app, method, path, examples, mode):
    app = make_app(max_wait_ms=1)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)
    operation = schema[path][method]
    seen: dict[int, int] = {}

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        response = case.call_and_validate(headers=AUTH, checks=CHECKS)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1

    check()
    assert seen and max(seen) < 500, seen
    print(f"{method} {path} {mode.value}: status codes {dict(sorted(seen.items()))}")
