"""`python -m backend dev` (what `make run` runs): a local database beside the API, data kept."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.factories import PASSWORD
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class Launcher:
    """One `python -m backend dev` process on free ports and its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.db_port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend", "dev", "--port", str(self.port),
             "--db-port", str(self.db_port), "--data-dir", str(data_dir)],
            cwd=ROOT, env={**env, "LOG_LEVEL": "warning"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the API never became ready")

    def database_pid(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        (pid,) = children.split()
        return int(pid)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=30)


def gone(pid: int, timeout: float = 10) -> bool:
    """The process has exited (a zombie that init has not reaped yet counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if "\nState:\tZ" in status:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    running = Launcher(tmp_path / "data")
    running.wait_ready()
    yield running
    if running.process.poll() is None:
        running.stop(signal.SIGKILL)


def test_readyz_reports_the_local_database(launcher: Launcher) -> None:
    response = httpx.get(f"{launcher.base}/readyz")
    assert response.json()["checks"]["mongodb"] == "ok"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_api_and_the_database(launcher: Launcher, signum: int) -> None:
    database = launcher.database_pid()
    launcher.stop(signum)
    assert gone(database)
    assert "Traceback" not in launcher.process.communicate()[1]


def test_the_database_dies_with_a_killed_launcher(launcher: Launcher) -> None:
    database = launcher.database_pid()
    launcher.stop(signal.SIGKILL)
    assert gone(database)


def test_data_survives_a_restart(launcher: Launcher) -> None:
    email = "keeper@example.com"
    registered = httpx.post(
        f"{launcher.base}/api/v2/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201
    launcher.stop()

    again = Launcher(launcher.data_dir)
    try:
        again.wait_ready()
        login = httpx.post(
            f"{again.base}/api/v2/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert login.status_code == 200
    finally:
        again.stop()


def test_a_second_launcher_on_the_same_data_refuses_clearly(launcher: Launcher) -> None:
    second = Launcher(launcher.data_dir)
    _, stderr = second.process.communicate(timeout=30)
    assert second.process.returncode == 1
    assert "already using" in stderr and f"pid {launcher.process.pid}" in stderr
    assert "Traceback" not in stderr


def test_clean_data_refuses_while_running_and_resets_after(launcher: Launcher) -> None:
    def clean() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend", "clean-data", "--data-dir", str(launcher.data_dir)],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    refused = clean()
    assert refused.returncode == 1 and "already using" in refused.stderr
    assert (launcher.data_dir / "mongodb").exists()
    launcher.stop()
    assert clean().returncode == 0
    assert not (launcher.data_dir / "mongodb").exists()


def test_a_job_then_ctrl_c_leaves_no_process_and_no_traceback(launcher: Launcher) -> None:
    """Jobs run inside `make run` (no Redis), rendering in a pool of worker processes."""
    account = {"email": "maker@example.com", "password": PASSWORD}
    api = f"{launcher.base}/api/v2"
    httpx.post(f"{api}/auth/register", json=account)
    token = httpx.post(f"{api}/auth/login", json=account).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    spec = {"project_name": "Todo", "data_models": [
        {"name": "Todo", "fields": [{"name": "title", "type": "string"}]}]}  # fmt: skip
    job = httpx.post(f"{api}/generate/fullstack", json=spec, headers=headers).json()
    for _ in range(300):
        job = httpx.get(f"{api}/generate/jobs/{job['id']}", headers=headers).json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    children = Path(f"/proc/{launcher.process.pid}/task/{launcher.process.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()]
    assert len(pids) >= 2  # the database and the rendering pool
    launcher.stop(signal.SIGINT)
    assert all(gone(pid) for pid in pids)
    assert "Traceback" not in launcher.process.communicate()[1]
