"""The spec names only what a route can answer."""

from fastapi import FastAPI


def test_forgot_password_documents_no_503(app: FastAPI) -> None:
    """Its work runs after the 202, so an unreachable database never reaches the caller."""
    responses = app.openapi()["paths"]["/api/v2/auth/password/forgot"]["post"]["responses"]
    assert "503" not in responses
    assert "202" in responses and "429" in responses
