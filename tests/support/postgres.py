"""Debian's PostgreSQL, started by the suite as redis-server is: a throw-away cluster on a free
loopback port, for generated projects that run on PostgreSQL."""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import free_port

DEBIAN_POSTGRESQL = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
# A test cluster is thrown away, never recovered after a crash: durability only costs time.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def postgres_bin_dir() -> Path:
    """The newest installed major's binaries (Debian keeps `initdb` and `postgres` off PATH)."""
    found = [p.parent for p in DEBIAN_POSTGRESQL.glob("*/bin/initdb") if p.parts[-3].isdigit()]
    if not found:
        raise RuntimeError(
            f"Debian's PostgreSQL is not installed (no {DEBIAN_POSTGRESQL}/<major>/bin/initdb):"
            " run `make test`, which installs it"
        )
    return max(found, key=lambda bin_dir: int(bin_dir.parts[-2]))


def as_postgres_user() -> list[str]:
    """The command prefix that drops root to Debian's `postgres` user: PostgreSQL refuses to
    run as root. `setpriv` execs, so the postmaster stays our child and gets our signals
    (`runuser` would fork and stand in between)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError(
            "no `postgres` system user to run PostgreSQL as (we are root): run `make test`,"
            " which installs Debian's postgresql package, which creates it"
        ) from None
    return ["setpriv", f"--reuid={SUPERUSER}", f"--regid={SUPERUSER}", "--init-groups", "--"]


class PostgresServer:
    """A throw-away cluster (`initdb` into a temp dir) on a free loopback port: superuser
    `postgres`, trust auth, its unix socket in the temp dir. Nothing of the system's cluster
    (Debian's `main` on 5432) is used or touched."""

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.run_as = as_postgres_user()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="devora-postgres-"))
        if self.run_as:
            user = pwd.getpwnam(SUPERUSER)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PostgresServer":
        try:
            self._initdb()
            self._spawn()
            self._wait_until_ready()
        except BaseException:
            self.close()
            raise
        return self

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self._client("createdb", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop it, disconnecting whoever still uses it (a generated project left running)."""
        self._client("dropdb", "--force", "--if-exists", name)

    def psql(self, database: str, sql: str) -> str:
        """Run a script, stopping at its first error (raised); the rows, unaligned, `|`
        between columns."""
        return self._client("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", database, input=sql).strip()  # fmt: skip

    def close(self) -> None:
        if self.process is not None:
            # SIGINT is PostgreSQL's fast shutdown: open connections don't keep it up.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def _initdb(self) -> None:
        command = [*self.run_as, str(self.bin / "initdb"), "-D", str(self.data),
                   f"--username={SUPERUSER}", "--auth=trust", "--encoding=UTF8", "--locale=C",
                   "--no-sync", "--no-instructions"]  # fmt: skip
        # cwd: the postgres user may not be allowed into ours.
        done = subprocess.run(command, cwd=self.dir, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")

    def _spawn(self) -> None:
        settings = [arg for setting in FAST_SETTINGS for arg in ("-c", setting)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.run_as, str(self.bin / "postgres"), "-D", str(self.data),
                 "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
                 "-k", str(self.dir), *settings],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        # An open port is not enough: the server answers "starting up" until recovery is done.
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.process.returncode}):\n{self._said()}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", *self._connection(), "-d", "postgres"],
                timeout=10,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres not ready after {timeout}s:\n{self._said()}")

    def _connection(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]

    def _client(self, program: str, *args: str, input: str | None = None) -> str:
        done = subprocess.run(
            [str(self.bin / program), *self._connection(), *args],
            input=input, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def _said(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]
