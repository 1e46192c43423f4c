"""Runs a command over a job's files in an isolated process: Debian's bubblewrap (`bwrap`).

Why bubblewrap: it is what Flatpak runs untrusted apps in, Debian packages it, it needs no
daemon and no root (user namespaces), and it starts in about a tenth of a second. Each run:
- sees a read-only `/usr` (the system's interpreters), a fresh size-bounded tmpfs copy of the
  files at `/work`, its own `/tmp`, `/proc` and `/dev`, and nothing else of the host: no
  `/etc/shadow`, no `/home`, no server files, no other job's files; its `/etc/passwd` and
  `/etc/group` name only its own user;
- has no network (an empty network namespace: loopback only) and its own PID, IPC and UTS
  namespaces; it inherits no environment variable (no secret reaches it);
- runs as a throw-away uid when the worker is root, under rlimits: CPU seconds, writable memory
  per process, process count, file size, no core files;
- is killed with its whole process tree (its PID namespace dies with it) on timeout, cancel,
  too much output, or the worker dying (`--die-with-parent`).

The command's stdout and stderr are its output (the last TAIL_BYTES kept, at most
`max_output_bytes` read before it is killed). A file it leaves at REPORT_PATH (a JUnit XML
report) comes back as `Run.report`: the command cannot write to that channel directly.
"""

import asyncio
import contextlib
import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("devora.sandbox")

REPORT_PATH = "/tmp/devora-report.xml"  # noqa: S108 - the sandbox's own tmpfs
TAIL_BYTES = 16 * 1024
REPORT_MAX_BYTES = 4 * 1024 * 1024
# Uids a root worker runs sandboxes as, one drawn per run: the process limit is counted per
# uid, so runs side by side (here or in another worker) do not share one.
UID_FIRST, UID_COUNT = 1_000_000, 1_000_000
# Copies the files onto the tmpfs, runs the command with its stdout joined to stderr (the
# output), then hands the report over on the wrapper's own stdout.
WRAPPER = f"""cp -R /src/. /work/ || exit 125
cd /work || exit 125
"$@" 1>&2 </dev/null
code=$?
[ -f {REPORT_PATH} ] && head -c {REPORT_MAX_BYTES} {REPORT_PATH}
exit $code
"""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 180
    cpu_s: int = 300
    memory_mb: int = 2048
    processes: int = 256
    disk_mb: int = 512
    max_output_bytes: int = 8 * 1024 * 1024


@dataclass
class Run:
    exit_code: int | None  # None: killed (see `limit`)
    output: str  # the last TAIL_BYTES of stdout and stderr
    output_bytes: int
    report: str | None
    limit: str | None  # "timeout", "output" or "canceled" when the run was killed
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Sandbox:
    def __init__(self, command: str, limits: Limits, concurrency: int) -> None:
        self.bwrap = shutil.which(command) if command else None
        self.limits = limits
        self._slots = asyncio.Semaphore(concurrency)
        self._usable: bool | None = None

    async def available(self) -> bool:
        """Whether runs can start here: the tool exists and a trivial run succeeds (user
        namespaces may be off). Probed once per process."""
        if self._usable is None:
            if self.bwrap is None:
                self._usable = False
            else:
                probe = await self.run({}, ["true"])
                self._usable = probe.ok
                if not probe.ok:
                    log.error("sandbox_unusable", output=probe.output[-2000:])
        return self._usable

    async def run(
        self,
        files: dict[str, str],
        command: list[str],
        *,
        environment: Path | None = None,
        env: dict[str, str] | None = None,
        stop: asyncio.Event | None = None,
    ) -> Run:
        """`command` in /work over `files`; `environment` (a prepared, read-only dependency
        folder) is mounted at its own path. `stop` set → the run is killed (`canceled`)."""
        async with self._slots:
            scratch = Path(tempfile.mkdtemp(prefix="devora-sandbox-"))
            root = os.geteuid() == 0
            uid = UID_FIRST + random.randrange(UID_COUNT) if root else os.getuid()  # noqa: S311
            gid = uid if root else os.getgid()
            try:
                await asyncio.to_thread(_write_tree, scratch / "src", files)
                await asyncio.to_thread(_write_identity, scratch / "etc", uid, gid)
                argv = self._argv(scratch, (uid, gid) if root else None, environment, env or {},
                                  command)  # fmt: skip
                return await self._watch(argv, stop)
            finally:
                await asyncio.to_thread(shutil.rmtree, scratch, True)

    def _argv(
        self,
        scratch: Path,
        switch_to: tuple[int, int] | None,
        environment: Path | None,
        env: dict[str, str],
        command: list[str],
    ) -> list[str]:
        assert self.bwrap is not None
        limits = self.limits
        prefix: list[str] = []
        if switch_to is not None:
            uid, gid = switch_to
            prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        disk = str(limits.disk_mb * 1024 * 1024)
        prefix += [
            "prlimit", f"--cpu={limits.cpu_s}", f"--data={limits.memory_mb * 1024 * 1024}",
            f"--nproc={limits.processes}", f"--fsize={disk}", "--nofile=1024", "--core=0", "--",
        ]  # fmt: skip
        path = f"{environment}/bin:/usr/bin:/bin" if environment else "/usr/bin:/bin"
        variables = {"PATH": path, "HOME": "/tmp",  # noqa: S108 - the sandbox's own "LANG": "C.UTF-8", "USER": "sandbox",
                     "LOGNAME": "sandbox", **env}  # fmt: skip
        box = [
            self.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
            "--proc", "/proc", "--dev", "/dev",
            "--size", disk, "--tmpfs", "/work",
            "--size", disk, "--tmpfs", "/tmp",  # noqa: S108 - a fresh tmpfs
            "--ro-bind", str(scratch / "src"), "/src",
            "--ro-bind", str(scratch / "etc" / "passwd"), "/etc/passwd",
            "--ro-bind", str(scratch / "etc" / "group"), "/etc/group",
        ]  # fmt: skip
        if environment is not None:
            box += ["--ro-bind", str(environment), str(environment)]
        # The root is bwrap's own tmpfs, unbounded: read-only once every mount point is made.
        box += ["--remount-ro", "/", "--chdir", "/work", "--clearenv"]
        for name, value in variables.items():
            box += ["--setenv", name, value]
        return [*prefix, *box, "--", "/bin/sh", "-c", WRAPPER, "sandbox", *command]

    async def _watch(self, argv: list[str], stop: asyncio.Event | None) -> Run:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        assert process.stdout is not None and process.stderr is not None
        output = _Tail(self.limits.max_output_bytes)
        report = bytearray()
        readers = asyncio.gather(
            _drain(process.stderr, output.add), _drain(process.stdout, _bounded(report))
        )
        ended = asyncio.ensure_future(process.wait())
        waits: set[asyncio.Future[object]] = {ended, output.overflow}  # type: ignore[arg-type]
        stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if stopped is not None:
            waits.add(stopped)  # type: ignore[arg-type]
        limit: str | None = None
        try:
            done, _ = await asyncio.wait(
                waits, timeout=self.limits.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if ended not in done:
                limit = "output" if output.overflow in done else "canceled" if done else "timeout"
                _kill(process)
            await process.wait()
            with contextlib.suppress(TimeoutError):
                # The PID namespace is gone, so nothing holds the pipes any more.
                await asyncio.wait_for(readers, 5)
        finally:
            _kill(process)
            for pending in (ended, stopped, output.overflow, readers):
                if pending is not None and not pending.done():
                    pending.cancel()
        return Run(
            exit_code=None if limit else process.returncode,
            output=output.text(),
            output_bytes=output.total,
            report=report.decode("utf-8", "replace") if report and not limit else None,
            limit=limit,
            duration_ms=int((time.monotonic() - started) * 1000),
        )


class _Tail:
    """The last TAIL_BYTES of the output and its total size; `overflow` resolves when the
    total passes `maximum`."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.total = 0
        self.buffer = bytearray()
        self.overflow: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.buffer += chunk
        del self.buffer[:-TAIL_BYTES]
        if self.total > self.maximum and not self.overflow.done():
            self.overflow.set_result(None)

    def text(self) -> str:
        return self.buffer.decode("utf-8", "replace")


def _bounded(into: bytearray) -> Callable[[bytes], None]:
    def add(chunk: bytes) -> None:
        if len(into) < REPORT_MAX_BYTES:
            into.extend(chunk[: REPORT_MAX_BYTES - len(into)])

    return add


async def _drain(stream: asyncio.StreamReader, add: Callable[[bytes], None]) -> None:
    while chunk := await stream.read(65536):
        add(chunk)


def _kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the run's process group; bwrap's init dying takes its PID namespace along."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _write_identity(folder: Path, uid: int, gid: int) -> None:
    """An /etc/passwd and /etc/group naming only the run's own user, `sandbox`: tools that
    look their user up (PostgreSQL's initdb, `getpass`) find it, and nothing of the host's."""
    folder.mkdir(mode=0o755)
    (folder / "passwd").write_text(f"sandbox:x:{uid}:{gid}:sandbox:/tmp:/bin/sh\n")
    (folder / "group").write_text(f"sandbox:x:{gid}:\n")
    for name in ("passwd", "group"):
        (folder / name).chmod(0o644)


def _write_tree(root: Path, files: dict[str, str]) -> None:
    """The files as the sandbox's uid can read them (a root worker's default is 0700)."""
    root.mkdir(mode=0o755)
    root.parent.chmod(0o755)
    for path, content in files.items():
        target = root / path
        for parent in reversed(target.relative_to(root).parents):
            (root / parent).mkdir(mode=0o755, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        target.chmod(0o644)
