"""The generated TypeScript client: in step with the spec, strict-typed, and its example run
under Node against the live API (register → job events)."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.typescript_client import CLIENT, build_client, npm


@pytest.fixture(scope="module")
def built() -> Iterator[None]:
    build_client()
    yield


def test_schema_ts_is_generated_from_the_committed_spec(built: None, tmp_path: Path) -> None:
    fresh = tmp_path / "schema.ts"
    npm("exec", "--", "openapi-typescript", "../../openapi.yaml", "--default-non-nullable",
        "false", "--output", str(fresh))  # fmt: skip
    committed = (CLIENT / "src" / "schema.ts").read_text()
    assert fresh.read_text() == committed, "stale: run `make client` and commit src/schema.ts"


def test_the_client_type_checks_under_strict(built: None) -> None:
    npm("run", "-s", "typecheck")


def test_the_example_runs_against_the_live_api(built: None, live_api: str) -> None:
    run = subprocess.run(
        ["node", "dist/examples/node.js", live_api],
        cwd=CLIENT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["duplicateEmailCode"] == "email_taken"
    assert result["refreshes"] == 1  # three concurrent 401s, one refresh
    ids = [event["id"] for event in result["events"]]
    assert ids == list(range(1, len(ids) + 1)), ids  # resumed after 2: nothing lost or repeated
    assert result["resumedFrom"] == 2
    names = [event["event"] for event in result["events"]]
    assert names[0] == "status" and "file" in names and names[-1] == "done"
    assert result["finalStatus"] == "succeeded"
    assert result["sessionEnded"] == "token_reused"
