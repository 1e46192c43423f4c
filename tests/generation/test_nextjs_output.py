"""Next.js output: every TypeScript file parses (TypeScript's own parser), JSON is JSON, the
SQL schema quotes its names. Type-checking with `tsc` comes with the TypeScript toolchain of
the clients issue; until then the parse is what is checked."""

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


def test_the_sql_schema_quotes_reserved_names() -> None:
    schema = nextjs("postgresql", ALL_FEATURES)["sql/schema.sql"]
    assert 'CREATE TABLE IF NOT EXISTS "orders"' in schema
    assert '"order" BIGINT' in schema and '"select" VARCHAR(255)' in schema
    assert "auth_users" in schema
    assert "sql/schema.sql" not in nextjs("mongodb", ALL_FEATURES)


def test_auth_protects_writes_in_the_route_handlers() -> None:
    with_auth = nextjs("sqlite", ["auth"])["app/api/orders/route.ts"]
    without = nextjs("sqlite", [])["app/api/orders/route.ts"]
    assert "await requireUser(request);" in with_auth and "requireUser" not in without
