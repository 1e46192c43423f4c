"""Start an app under uvicorn the way production does (uvloop, httptools) for a benchmark."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
API = "backend.main:app"


@contextmanager
def api_server(
    port: int,
    env: dict[str, str] | None = None,
    *,
    app: str = API,
    workers: int = 1,
    cpus: str | None = None,
    ready_path: str = "/readyz",
    log: Path | None = None,
) -> Iterator[str]:
    """Yield the base URL of a running `uvicorn <app>`, stopped on exit.

    `cpus` pins the server to those cores (`taskset -c`), so the load generator can have the
    others; our API runs with the bounded HTTP protocol it is deployed with. `log`: a file
    for everything the server prints (else only a failed start's error output is kept).
    """
    command = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--no-proxy-headers",
    ]  # fmt: skip
    if app == API:
        command += ["--http", "backend.http_protocol:BoundedHttpTools"]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    output = log.open("ab") if log is not None else None
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=output or subprocess.DEVNULL,
        stderr=output or subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{app} did not start: {process.stderr.read() if process.stderr else ''}"
                )
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        if output is not None:
            output.close()
