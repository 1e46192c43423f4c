"""Every fullstack spec rule in the contract: 422 `validation_error` with the `loc` of the value."""

from typing import Any

import httpx
import pytest

from tests.support.jobs import FULLSTACK
from tests.support.specs import SPEC


def with_model(**model: Any) -> dict[str, Any]:
    return {**SPEC, "data_models": [{"name": "Product", "fields": [{"name": "title",
                                                                    "type": "string"}],
                                     **model}]}  # fmt: skip


def with_field(**field: Any) -> dict[str, Any]:
    return with_model(fields=[{"name": "title", "type": "string", **field}])


BAD_SPECS = [
    ({**SPEC, "project_name": ""}, ["body", "project_name"]),
    ({**SPEC, "project_name": "x" * 101}, ["body", "project_name"]),
    ({**SPEC, "project_name": "   "}, ["body", "project_name"]),
    ({**SPEC, "data_models": []}, ["body", "data_models"]),
    (
        {
            **SPEC,
            "data_models": [
                {"name": f"M{i}", "fields": [{"name": "a", "type": "string"}]} for i in range(31)
            ],
        },
        ["body", "data_models"],
    ),
    (with_model(fields=[]), ["body", "data_models", 0, "fields"]),
    (
        with_model(fields=[{"name": f"f{i}", "type": "string"} for i in range(51)]),
        ["body", "data_models", 0, "fields"],
    ),
    (with_model(name="1Product"), ["body", "data_models", 0, "name"]),
    (with_model(name="Pro-duct"), ["body", "data_models", 0, "name"]),
    (with_model(name="P" * 65), ["body", "data_models", 0, "name"]),
    (with_model(name="class"), ["body", "data_models", 0, "name"]),
    (with_model(name="Function"), ["body", "data_models", 0, "name"]),
    (with_model(name="Aux"), ["body", "data_models", 0, "name"]),  # Windows file name
    (with_model(name="Com1"), ["body", "data_models", 0, "name"]),
    (with_field(name="def"), ["body", "data_models", 0, "fields", 0, "name"]),
    (with_field(name="lambda"), ["body", "data_models", 0, "fields", 0, "name"]),
    (with_field(name="typeof"), ["body", "data_models", 0, "fields", 0, "name"]),
    (with_field(name="_private"), ["body", "data_models", 0, "fields", 0, "name"]),
    (with_field(type="money"), ["body", "data_models", 0, "fields", 0, "type"]),
    (with_field(required="yes"), ["body", "data_models", 0, "fields", 0, "required"]),
    (with_field(extra=True), ["body", "data_models", 0, "fields", 0, "extra"]),
    (
        with_model(fields=[{"name": "Title", "type": "string"}, {"name": "title", "type": "text"}]),
        ["body", "data_models", 0, "fields"],
    ),
    (
        {
            **SPEC,
            "data_models": [
                {"name": "Order", "fields": [{"name": "a", "type": "string"}]},
                {"name": "ORDER", "fields": [{"name": "a", "type": "string"}]},
            ],
        },
        ["body", "data_models"],
    ),
    ({**SPEC, "features": ["auth", "payments"]}, ["body", "features", 1]),
    ({**SPEC, "framework": "django"}, ["body", "framework"]),
    ({**SPEC, "database": "oracle"}, ["body", "database"]),
    ({**SPEC, "unexpected": 1}, ["body", "unexpected"]),
    ({k: v for k, v in SPEC.items() if k != "data_models"}, ["body", "data_models"]),
]


@pytest.mark.parametrize(("spec", "loc"), BAD_SPECS)
async def test_bad_specs_are_422_with_the_location(
    client: httpx.AsyncClient, alice: dict[str, str], spec: dict[str, Any], loc: list[Any]
) -> None:
    response = await client.post(FULLSTACK, json=spec, headers=alice)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert any(error["loc"][: len(loc)] == loc for error in body["errors"]), body["errors"]


@pytest.mark.parametrize("name", ["User", "Order", "Group", "Select", "Table"])
async def test_sql_words_are_fine_as_model_names(
    client: httpx.AsyncClient, alice: dict[str, str], name: str
) -> None:
    response = await client.post(FULLSTACK, json=with_model(name=name), headers=alice)
    assert response.status_code == 202, response.text


async def test_a_job_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    response = await client.post(FULLSTACK, json=SPEC)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
