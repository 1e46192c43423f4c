"""The service as a whole: health, request ids, and the API design in `openapi.yaml`."""

from pathlib import Path

import yaml
from fastapi.testclient import TestClient

DESIGN = Path(__file__).resolve().parents[1] / "openapi.yaml"
METHODS = {"get", "post", "put", "patch", "delete"}


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


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
