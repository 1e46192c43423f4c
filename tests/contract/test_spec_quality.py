"""The committed spec reads well and says what the server sends: names, summaries, tags,
examples, and problems only as `application/problem+json` with their codes."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from api_v2.spec import TAGS
from schemas.user_schemas import UserCreate

SPEC: dict[str, Any] = yaml.safe_load((Path(__file__).parents[2] / "openapi.yaml").read_text())
OPERATIONS = [
    (f"{method.upper()} {path}", operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
]
ids = [label for label, _ in OPERATIONS]


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=ids)
def test_each_operation_is_named_summarised_and_tagged(label: str, operation: Any) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", operation["operationId"]), label
    summary = operation["summary"]
    assert summary and "`" not in summary and len(summary) <= 90, summary
    assert len(operation["tags"]) == 1 and operation["tags"][0] in {t["name"] for t in TAGS}


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=ids)
def test_each_request_body_has_an_example(label: str, operation: Any) -> None:
    body = operation.get("requestBody")
    if body is None:
        return
    for media in body["content"].values():
        ref = media["schema"].get("$ref", "").rsplit("/", 1)[-1]
        schema = SPEC["components"]["schemas"].get(ref, {})
        assert media.get("example") or schema.get("examples"), label


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=ids)
def test_problems_are_problem_json_with_their_codes(label: str, operation: Any) -> None:
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        assert list(response["content"]) == ["application/problem+json"], (label, status)
        codes = response["x-problem-codes"]
        assert all(f"`{code}`" in response["description"] for code in codes), (label, status)
        schema = response["content"]["application/problem+json"]["schema"]
        if "allOf" in schema:
            assert schema["properties"]["code"]["enum"] == codes


@pytest.mark.parametrize(("label", "operation"), OPERATIONS, ids=ids)
def test_bodiless_answers_document_no_body(label: str, operation: Any) -> None:
    for status in ("202", "204", "304"):
        if status in operation["responses"] and not label.startswith("POST /api/v2/generate"):
            assert "content" not in operation["responses"][status], (label, status)


def test_every_body_may_be_too_large_and_invalid() -> None:
    for label, operation in OPERATIONS:
        if "requestBody" in operation:
            assert {"413", "422"} <= set(operation["responses"]), label


def test_the_docs_open_with_what_a_frontend_developer_needs() -> None:
    description = SPEC["info"]["description"]
    for heading in ("Authentication", "Errors", "Rate limits", "Pagination", "Idempotency",
                    "Job events"):  # fmt: skip
        assert f"## {heading}" in description
    assert [tag["name"] for tag in SPEC["tags"]] == [tag["name"] for tag in TAGS]


@pytest.mark.parametrize(
    "password",
    ["Correct-Horse-9", "aaaaaaa1", "AAAAAAA1", "Aaaaaaaa", "1aaaaaaA", "a\nA\n1xxxx", "ÄÖÜäöü12"],
)
def test_the_documented_password_pattern_is_the_rule_enforced(password: str) -> None:
    pattern = SPEC["components"]["schemas"]["UserCreate"]["properties"]["password"]["pattern"]
    try:
        UserCreate(email="ada@example.com", password=password)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == bool(re.search(pattern, password)), password
