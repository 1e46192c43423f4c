"""schemathesis over every operation of the published spec, against the live server."""

import subprocess
import sys
from pathlib import Path

from tests.support.factories import admin_token

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


def test_every_operation_answers_as_its_spec_says(live_api: str, tmp_path: Path) -> None:
    token = admin_token(live_api)
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")), "run", str(ROOT / "openapi.yaml"),
            "--url", live_api, "--header", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--max-examples", "20", "--seed", "15",
            "--phases", "examples,coverage,fuzzing", "--workers", "2",
            "--request-timeout", "20", "--no-color",
        ],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    print(run.stdout[-5000:])
    assert run.returncode == 0, run.stdout[-60000:] + run.stderr[-5000:]
