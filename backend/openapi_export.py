"""The OpenAPI document as committed YAML: generated from the app, stable between runs."""

from typing import Any

import yaml
from fastapi import FastAPI


def openapi_yaml(app: FastAPI) -> str:
    """Serialise the app's OpenAPI 3.1 schema; key order follows the code, so diffs stay small."""
    schema: dict[str, Any] = app.openapi()
    return yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=100)
