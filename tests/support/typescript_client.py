"""The TypeScript client's toolchain, run the way `make test` installs it (Debian's Node)."""

import fcntl
import shutil
import subprocess
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        ["npm", *args], cwd=CLIENT, capture_output=True, text=True, timeout=timeout
    )
    assert run.returncode == 0, f"npm {' '.join(args)}:\n{run.stdout[-5000:]}{run.stderr[-5000:]}"
    return run


def build_client() -> None:
    """Install the locked packages when missing, then compile (`tsc`, strict) into dist/.
    Under a lock: two pytest-xdist workers must not write dist/ at the same time."""
    assert shutil.which("node") and shutil.which("npm"), "make test installs nodejs and npm"
    with (CLIENT / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (CLIENT / "node_modules" / ".package-lock.json").exists():
            npm("ci", "--no-audit", "--no-fund")
        npm("run", "-s", "build")
