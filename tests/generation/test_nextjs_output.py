"""Next.js output, quickly: every TypeScript file parses (TypeScript's own parser), JSON is
JSON, the initial migration quotes its names, the Node versions are declared. Installing,
`tsc`, lint, the project's own vitest suite, `next build` and HTTP calls to `next start` on
every database are in `test_nextjs_projects.py` (marked `generated_projects`)."""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.generation.fullstack.generator import generate
from schemas.generation_schemas import FullstackCreate
from tests.support.specs import ALL_FEATURES, rich_spec

PARSE = """
const ts = require("typescript");
const fs = require("fs");
let bad = 0;
for (const path of process.argv.slice(2)) {
  const text = fs.readFileSync(path, "utf8");
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  for (const d of source.parseDiagnostics) {
    bad++;
    console.log(path + ": " + ts.flattenDiagnosticMessageText(d.messageText, "\\n"));
  }
}
process.exit(bad ? 1 : 0);
"""


@pytest.fixture(scope="session")
def typescript(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed: the Next.js output cannot be parsed")
    home = tmp_path_factory.mktemp("typescript")
    subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(home),
         "typescript@5.9.3"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    script = home / "parse.js"
    script.write_text(PARSE)
    yield script


def nextjs(database: str, features: list[str]) -> dict[str, str]:
    spec = rich_spec(database, features).model_dump()
    return generate(FullstackCreate.model_validate({**spec, "framework": "nextjs"}))


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mongodb"])
@pytest.mark.parametrize("features", [ALL_FEATURES, []], ids=["all", "none"])
def test_every_typescript_file_parses(
    typescript: Path, tmp_path: Path, database: str, features: list[str]
) -> None:
    files = nextjs(database, features)
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    sources = [str(tmp_path / p) for p in files if p.endswith(".ts")]
    assert any("app/api/orders/item/route.ts" in s for s in sources)
    result = subprocess.run(
        ["node", str(typescript), *sources], capture_output=True, text=True, timeout=120,
        cwd=typescript.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for path in ("package.json", "tsconfig.json"):
        json.loads(files[path])


def test_the_initial_migration_quotes_reserved_names() -> None:
    schema = nextjs("postgresql", ALL_FEATURES)["migrations/001_initial.sql"]
    assert 'CREATE TABLE "orders"' in schema
    assert '"order" BIGINT' in schema and '"select" VARCHAR(255)' in schema
    assert '"owner_id" BIGINT NOT NULL REFERENCES "auth_users" ("id")' in schema
    mongodb = nextjs("mongodb", ALL_FEATURES)
    assert "migrations/001_initial.sql" not in mongodb and "scripts/migrate.mjs" not in mongodb


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mongodb"])
def test_the_project_states_the_node_versions_it_runs_on(database: str) -> None:
    package = json.loads(nextjs(database, [])["package.json"])
    assert package["engines"]["node"] == "^20.19.0 || ^22.13.0 || ^24.0.0 || ^26.0.0"
    assert {"test", "lint", "typecheck", "build", "start"} <= set(package["scripts"])
    # better-sqlite3 13 needs Node 22: on Node 20 its first query crashed the server.
    assert package["dependencies"].get("better-sqlite3", "12.11.1") == "12.11.1"


def test_auth_protects_writes_in_the_route_handlers() -> None:
    with_auth = nextjs("sqlite", ["auth"])["app/api/orders/route.ts"]
    without = nextjs("sqlite", [])["app/api/orders/route.ts"]
    assert "await requireUser(request);" in with_auth and "requireUser" not in without
