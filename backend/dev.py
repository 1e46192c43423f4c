"""`python -m backend dev`: a local MongoDB-wire database beside the API, as `make run` starts it.

SecantusDB's `secantusd-py` runs as its own process (it is GPL-2.0-only and beta: never
imported here, never in the production image) from its own virtualenv, `.venv-db`, with its
data under `.data/mongodb` so that it survives restarts. The API then runs in this process.
Ctrl-C or SIGTERM stops the API first, then the database; if this process dies outright, the
kernel stops the database too (PR_SET_PDEATHSIG), so nothing is left behind.
"""

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


class DevError(Exception):
    """A reason the local stack cannot start, worded for the person who typed `make run`."""


def secantusd_binary() -> str:
    """`SECANTUSD` if set, else the one `make` installs into `.venv-db`, else one on PATH."""
    candidates = [os.environ.get("SECANTUSD"), str(ROOT / ".venv-db/bin/secantusd-py")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("secantusd-py")
    if found is None:
        raise DevError(
            "secantusd-py is not installed: `make run` installs it into .venv-db "
            "(from requirements-db.txt), or set MONGODB_URL to a MongoDB server"
        )
    return found


def _die_with_parent() -> None:
    """Runs in the child before exec: the database gets SIGTERM when its launcher dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_secantusd(
    storage: str, port: int, log: IO[bytes] | int, *, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `secantusd-py` on 127.0.0.1:`port`; `storage` is a directory or `:memory:`."""
    command = [
        secantusd_binary(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        storage,
        "--log-level",
        "WARNING",
        *(extra or []),
    ]
    # Its own session: a Ctrl-C in the terminal reaches the launcher, which stops the API
    # before the database, rather than both at once.
    return subprocess.Popen(  # noqa: S603 - our own binary and arguments, no shell
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )


def local_url(port: int) -> str:
    # retryWrites=false only for the local engine: SecantusDB slows down steadily under
    # retryable writes. Production URLs keep the default.
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


def wait_for_mongodb(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Block until the server answers `ping`; fail early if its process exits."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + timeout_s
    client: MongoClient[dict[str, object]]
    with MongoClient(url, serverSelectionTimeoutMS=250, connectTimeoutMS=250) as client:
        while True:
            if process.poll() is not None:
                raise DevError(f"the database exited with status {process.returncode}")
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise DevError(f"the database did not answer within {timeout_s:.0f}s") from None
                time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold `data_dir/dev.lock`; a second launcher on the same data refuses to start."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "dev.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            pid = lock.read().strip() or "?"
            raise DevError(
                f"another `make run` is already using {data_dir} (pid {pid}); stop it first"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextlib.contextmanager
def local_database(data_dir: Path, port: int) -> Iterator[str]:
    """A `secantusd-py` on `data_dir/mongodb`, synced on every commit; yields its URL."""
    storage = data_dir / "mongodb"
    storage.mkdir(parents=True, exist_ok=True)
    url = local_url(port)
    with open(data_dir / "mongodb.log", "ab") as log:
        # --sync-on-commit: a kill -9 otherwise loses the last ~50 ms of acknowledged writes.
        process = start_secantusd(str(storage), port, log, extra=["--sync-on-commit"])
        try:
            wait_for_mongodb(url, process, READY_TIMEOUT_S)
            yield url
        finally:
            stop(process)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run(host: str, port: int, data_dir: Path, db_port: int) -> int:
    """Start the database (unless MONGODB_URL is set), then serve the API until stopped."""
    import uvicorn

    from backend.http_protocol import SERVER_OPTIONS

    # Until uvicorn installs its own handlers, SIGTERM unwinds through the `finally`s.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with exclusive(data_dir), contextlib.ExitStack() as stack:
            # The API keeps its generated JWT secret beside the database (`DATA_DIR`).
            os.environ["DATA_DIR"] = str(data_dir)
            if os.environ.get("MONGODB_URL"):
                print("Using MONGODB_URL from the environment; no local database started")
            else:
                url = stack.enter_context(local_database(data_dir, db_port))
                os.environ["MONGODB_URL"] = url
                print(f"Local database: {url} (data in {data_dir / 'mongodb'})")
            print(f"Devora API on http://{host}:{port} (docs at http://{host}:{port}/docs)")
            sys.stdout.flush()
            uvicorn.run(
                "backend.main:app",
                host=host,
                port=port,
                access_log=False,
                **SERVER_OPTIONS,  # type: ignore[arg-type]
            )
    except DevError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def clean_data(data_dir: Path) -> int:
    """Delete the local database's files, unless a launcher is using them."""
    try:
        with exclusive(data_dir):
            shutil.rmtree(data_dir / "mongodb", ignore_errors=True)
    except DevError as exc:
        print(f"clean-data: {exc}", file=sys.stderr)
        return 1
    print(f"Removed {data_dir / 'mongodb'}")
    return 0
