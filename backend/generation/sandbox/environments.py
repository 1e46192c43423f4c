"""The read-only dependency environments sandboxes mount: a sandbox has no network, so what a
generated project imports must be installed before it runs.

- `python`: one virtualenv with every package a generated FastAPI project pins
  (`fullstack.generator.PINNED`), for all its databases, on the system's Python under `/usr`
  (the one the sandbox sees).
- `node`: one `node_modules` with every package a generated Next.js project pins (the
  dependencies of its `package.json` for each database, merged), for Debian's Node under
  `/usr`; `bin/` points at `node_modules/.bin`.

Each is named by the hash of its pins and built once per machine, under a file lock (workers
starting together build it once). A new pin in the generator or a template is a new hash,
hence a new environment at the next worker start or `python -m backend sandbox-env`; older
ones can be deleted.
"""

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import structlog

from backend.generation.fullstack.generator import PINNED, generate
from schemas.generation_schemas import FullstackCreate

log = structlog.get_logger("devora.sandbox")

READY = ".devora-ready"
BUILD_TIMEOUT_S = 900
KINDS = ("python", "node")


class EnvironmentUnavailable(Exception):
    """The dependency environment could not be built (no interpreter, no package index)."""


def home_of(configured: str) -> Path:
    """SANDBOX_HOME, or a folder every uid can read that outlives a reboot."""
    default = Path("/var/tmp/devora-sandbox")  # noqa: S108 - a cache; built under a lock
    return Path(configured) if configured else default


def environment(kind: str, home: Path) -> Path:
    """The `kind` environment for the current pins, built if missing (blocking: call in a
    thread). Raises `EnvironmentUnavailable` when it cannot be built."""
    pins, build = (
        (python_pins(), _build_python) if kind == "python" else (node_package(), _build_node)
    )
    digest = hashlib.sha256(pins.encode()).hexdigest()[:16]
    target = home / f"{kind}-{digest}"
    if (target / READY).exists():
        return target
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    with (home / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / READY).exists():
            return target  # another process built it while this one waited
        shutil.rmtree(target, ignore_errors=True)  # a build that died midway
        log.info("sandbox_environment_building", path=str(target))
        try:
            target.mkdir()
            build(target, pins)
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise EnvironmentUnavailable(str(exc)[-2000:]) from exc
        _readable(target)
        (target / READY).write_text(pins, encoding="utf-8")
        log.info("sandbox_environment_ready", path=str(target))
    return target


def python_pins() -> str:
    return "\n".join(sorted(PINNED.values())) + "\n"


def node_package() -> str:
    """A package.json whose dependencies are every generated Next.js project's, merged."""
    merged: dict[str, dict[str, str]] = {"dependencies": {}, "devDependencies": {}}
    for database in ("sqlite", "postgresql", "mongodb"):
        spec = FullstackCreate.model_validate({
            "project_name": "env", "framework": "nextjs", "database": database,
            "features": ["auth"],
            "data_models": [{"name": "Item", "fields": [{"name": "name", "type": "string"}]}],
        })  # fmt: skip
        package = json.loads(generate(spec)["package.json"])
        for section, pins in merged.items():
            pins.update(package.get(section, {}))
    body = {"name": "devora-sandbox-node", "private": True, **merged}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def _build_python(target: Path, pins: str) -> None:
    python = _under_usr(Path(sys.executable).resolve(), "python3")
    _run([python, "-m", "venv", str(target)])
    pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", "--no-cache-dir", *pins.split()])


def _build_node(target: Path, package: str) -> None:
    node = shutil.which("node")
    _under_usr(Path(node).resolve() if node else None, "node")
    (target / "package.json").write_text(package, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(target), "npm_config_update_notifier": "false"}
    # better-sqlite3 compiles itself where no prebuilt binary can be downloaded: against
    # Debian's Node headers, not ones node-gyp would download.
    if Path("/usr/include/node/node.h").exists():
        env["npm_config_nodedir"] = "/usr"
    npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
    _run([*npm, f"--cache={target / '.npm'}"], cwd=target, env=env)
    shutil.rmtree(target / ".npm", ignore_errors=True)
    (target / "bin").symlink_to("node_modules/.bin")


def _under_usr(found: Path | None, name: str) -> str:
    """An interpreter the sandbox can see (it mounts only /usr)."""
    if found is not None and found.is_relative_to("/usr"):
        return str(found)
    for candidate in (f"/usr/local/bin/{name}", f"/usr/bin/{name}"):
        if Path(candidate).exists():
            return candidate
    raise EnvironmentUnavailable(f"no {name} under /usr")


def _readable(target: Path) -> None:
    """Readable (and folders enterable) by the sandbox's throw-away uids."""
    for path in [target, *target.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or path.stat().st_mode & 0o100 else 0o644)


def _run(command: list[str], **options: object) -> None:
    done = subprocess.run(  # noqa: S603 - our own fixed commands
        command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, **options
    )  # type: ignore[call-overload]
    if done.returncode != 0:
        raise subprocess.SubprocessError(f"{command[:4]}: {done.stdout}\n{done.stderr}")
