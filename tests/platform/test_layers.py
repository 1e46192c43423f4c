"""The code's shape: imports flow one way (endpoints → services → repositories) and no module
imports itself back through others, not even from inside a function."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backend", "api_v2", "schemas")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, set[str]]:
    """Each of our modules and the modules of ours it imports, anywhere in its body."""
    paths = [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    names = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[_module_name(path)] = {name for name in imported if name in names}
    return graph


GRAPH = _modules()


def _cycle_from(start: str) -> list[str] | None:
    """A path of imports from `start` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        module, path = stack.pop()
        for target in GRAPH.get(module, ()):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def _is_package_init(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").exists()


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not _is_package_init(m)))
def test_no_import_cycle(module: str) -> None:
    assert _cycle_from(module) is None, " → ".join(_cycle_from(module) or [])


def _imports_of(prefix: str) -> set[tuple[str, str]]:
    return {(m, t) for m, targets in GRAPH.items() if m.startswith(prefix) for t in targets}


def test_only_the_app_factory_imports_the_http_layer() -> None:
    found = {m for m, t in _imports_of("backend") if t.startswith("api_v2")}
    assert found <= {"backend.main"}


def test_schemas_are_a_leaf() -> None:
    assert {(m, t) for m, t in _imports_of("schemas") if not t.startswith("schemas")} == set()


def test_repositories_import_no_service_or_job_code() -> None:
    above = ("backend.services", "backend.generation", "backend.cache", "backend.integrations")
    assert {(m, t) for m, t in _imports_of("backend.repositories") if t.startswith(above)} == set()


def test_generation_reaches_services_only_through_project_rules() -> None:
    allowed = {"backend.services.project_rules"}
    wrong = {
        (m, t)
        for m, t in _imports_of("backend.generation")
        if t.startswith("backend.services") and t not in allowed
    }
    assert wrong == set()
