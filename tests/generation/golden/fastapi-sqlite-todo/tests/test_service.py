"""The service as a whole: health, request ids, one error format, and the API design in
`openapi.yaml`."""

from pathlib import Path

import yaml
from fastapi.testclient import TestClient

DESIGN = Path(__file__).resolve().parents[1] / "openapi.yaml"
METHODS = {"get", "post", "put", "patch", "delete"}
URL = "/tasks"


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_an_unknown_route_is_404_in_the_error_format(client: TestClient) -> None:
    response = client.get("/no-such-route")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not Found"}


def test_a_wrong_method_is_405_in_the_error_format(client: TestClient) -> None:
    response = client.put(URL, json={})
    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "detail": "Method Not Allowed"}
    assert response.headers["allow"]


def test_validation_errors_are_422_in_the_error_format(client: TestClient, auth: dict[str, str]) -> None:
    for response in (
        client.post(URL, json={"unexpected": 1}, headers=auth),
        client.post(URL, content=b"{not json", headers={**auth, "Content-Type": "application/json"}),
    ):
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "validation_error" and body["detail"] and body["errors"]


def test_the_app_serves_exactly_the_designed_operations(client: TestClient) -> None:
    design = yaml.safe_load(DESIGN.read_text())
    served = client.get("/openapi.json").json()

    def operations(document: dict) -> set[tuple[str, str]]:
        return {
            (path, method)
            for path, item in document["paths"].items()
            for method in item
            if method in METHODS
        }

    assert operations(served) == operations(design)
