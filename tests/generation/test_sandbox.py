"""The sandbox that runs jobs' code, as real bubblewrap processes: what code inside it tries
(from a pytest suite, as a generated project's tests would) is contained and reported."""

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

from backend.config import Settings
from backend.generation.sandbox.box import Limits, Sandbox
from backend.generation.sandbox.verify import (
    POSTGRES_URL,
    PYTEST,
    Plan,
    Verifier,
    postgres_bin,
)


def verifier(**limits: object) -> Verifier:
    return Verifier(Settings(_env_file=None, **limits))  # type: ignore[arg-type]


def one_test(body: str) -> dict[str, str]:
    """A project whose one test is `body` (indented into a test function)."""
    indented = "\n".join(f"    {line}" for line in body.strip().splitlines())
    return {
        "tests/test_escape.py": "import os, socket, subprocess, sys\n\n\n"
        f"def test_it():\n{indented}\n"
    }


async def checked(files: dict[str, str], **limits: object):  # type: ignore[no-untyped-def]
    return await verifier(**limits).run(files, Plan(command=PYTEST), asyncio.Event())


async def test_a_passing_suite_reports_each_test() -> None:
    files = {
        "tests/test_a.py": "def test_one():\n    assert 1\n\ndef test_two():\n    assert 0, 'no'\n",
        "tests/test_b.py": "import pytest\n\n@pytest.fixture\ndef broken():\n"
        "    raise RuntimeError\n\ndef test_three(broken):\n    pass\n",
    }
    checks, tests = await checked(files)
    assert (checks.status, checks.passed, checks.failed, checks.errors) == ("failed", 1, 1, 1)
    assert {t.name: t.status for t in tests} == {
        "tests.test_a::test_one": "passed",
        "tests.test_a::test_two": "failed",
        "tests.test_b::test_three": "error",
    }
    assert "AssertionError: no" in checks.output_tail
    assert checks.command == "python -m pytest"


async def test_secrets_and_host_files_are_out_of_reach(tmp_path: Path) -> None:
    secret = tmp_path / ".env"
    secret.write_text("JWT_SECRET=the-servers-own-secret\n")
    os.environ["DEVORA_TEST_SECRET"] = "inherited-secret"
    try:
        checks, _ = await checked(
            one_test(f"""
for path in ("/etc/shadow", {str(secret)!r}, "/root/.bashrc", {str(Path.cwd() / "README.md")!r}):
    assert not os.path.exists(path), path
assert "DEVORA_TEST_SECRET" not in os.environ and "JWT_SECRET" not in os.environ
assert os.getuid() != 0
import pwd
assert [user.pw_name for user in pwd.getpwall()] == ["sandbox"]  # not the host's accounts
print(sorted(os.environ))
""")
        )
    finally:
        del os.environ["DEVORA_TEST_SECRET"]
    assert checks.status == "passed", checks.output_tail


async def test_writes_stay_in_the_working_copy(tmp_path: Path) -> None:
    target = tmp_path / "planted"
    checks, _ = await checked(
        one_test(f"""
for path in ("/usr/planted", "/src/planted", "/etc/planted", {str(target)!r}):
    try:
        open(path, "w").write("x")
    except OSError:
        continue
    raise AssertionError(f"wrote {{path}}")
open("here.txt", "w").write("fine")
""")
    )
    assert checks.status == "passed", checks.output_tail
    assert not target.exists()


async def test_there_is_no_network() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        checks, _ = await checked(
            one_test(f"""
for address in (("127.0.0.1", {port}), ("1.1.1.1", 80)):
    try:
        socket.create_connection(address, timeout=2)
    except OSError:
        continue
    raise AssertionError(f"reached {{address}}")
""")
        )
    finally:
        listener.close()
    assert checks.status == "passed", checks.output_tail


async def test_a_fork_bomb_is_contained_and_the_next_run_is_fine() -> None:
    bomb = one_test("""
import time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    print("fork refused after", children, exc)
    raise
""")
    checks, _ = await checked(bomb, sandbox_processes=64, sandbox_timeout_s=60)
    assert checks.status == "failed" and checks.failed == 1
    assert "fork refused after" in checks.output_tail
    after, _ = await checked(one_test("assert True"))
    assert after.status == "passed"


async def test_four_gib_cannot_be_allocated() -> None:
    checks, _ = await checked(one_test("bytearray(4 * 1024**3)"), sandbox_memory_mb=1024)
    assert checks.status == "failed" and "MemoryError" in checks.output_tail


async def test_a_run_that_never_ends_is_killed_with_its_children() -> None:
    marker = f"sleeper-{os.getpid()}-{time.monotonic_ns()}"
    files = one_test(
        f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 3600'])\n"
        "import time\ntime.sleep(3600)"
    )
    started = time.monotonic()
    checks, _ = await checked(files, sandbox_timeout_s=4)
    assert time.monotonic() - started < 30
    assert (checks.status, checks.reason, checks.errors) == ("failed", "timeout", 1)
    assert (
        marker not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    )


async def test_a_flood_of_output_is_cut_off() -> None:
    files = one_test("chunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)")
    checks, _ = await checked(files, sandbox_output_bytes=4 * 1024 * 1024, sandbox_timeout_s=60)
    assert (checks.status, checks.reason) == ("failed", "output_limit")
    assert len(checks.output_tail) <= 4000


async def test_a_stop_kills_the_run_at_once() -> None:
    sandbox = Sandbox("bwrap", Limits(timeout_s=60), 1)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)
    started = time.monotonic()
    run = await sandbox.run({}, ["sleep", "60"], stop=stop)
    assert run.limit == "canceled" and time.monotonic() - started < 10


async def test_without_the_tool_checks_are_skipped_not_passed() -> None:
    for command in ("", "no-such-bwrap"):
        checks, tests = await checked(one_test("assert True"), sandbox_command=command)
        assert (checks.status, checks.reason, tests) == ("skipped", "sandbox_unavailable", [])


async def test_a_forged_report_cannot_be_written_from_inside() -> None:
    """The report comes from the file pytest writes, handed over after the command ends:
    what the code prints to its output is output, not the report."""
    fake = '<testsuite><testcase classname="x" name="forged"/></testsuite>'
    checks, tests = await checked(one_test(f"print({fake!r})\nassert False"))
    assert checks.status == "failed" and [t.name for t in tests] == ["tests.test_escape::test_it"]


async def test_a_postgresql_run_gets_a_server_of_its_own() -> None:
    """Debian's PostgreSQL, started inside the sandbox on its private loopback: UTF-8, and
    new for each run (the second run creates the same table again)."""
    files = one_test("""
import psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
    assert connection.execute("SHOW server_encoding").fetchone() == ("UTF8",)
    connection.execute("CREATE TABLE left_behind (x int)")
""")
    plan = Plan(command=PYTEST, env={"DATABASE_URL": POSTGRES_URL}, postgres=True)
    for _ in range(2):
        checks, _ = await verifier().run(files, plan, asyncio.Event())
        assert (checks.status, checks.passed) == ("passed", 1), checks.output_tail


def test_the_newest_debian_postgresql_is_used(tmp_path: Path) -> None:
    assert postgres_bin(tmp_path) is None
    for major in ("13", "15", "9", "not-a-version"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "postgres").touch()
    assert postgres_bin(tmp_path) == str(tmp_path / "15" / "bin")
