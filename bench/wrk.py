"""Run wrk against loopback only and read its figures."""

import ipaddress
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_DURATION_S = 120

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str


def ensure_loopback(url: str) -> None:
    """Refuse any target that is not this machine's loopback."""
    host = urlsplit(url).hostname or ""
    for info in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit(f"refusing to load {url}: {host} is not a loopback address")


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no {percentile}% latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    name: str,
    url: str,
    *,
    duration_s: int,
    connections: int,
    threads: int = 1,
    script: Path | None = None,
    script_args: list[str] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: int = 2,
    cpus: str | None = None,
    max_duration_s: int = MAX_DURATION_S,
) -> Result:
    ensure_loopback(url)
    duration_s = min(duration_s, max_duration_s)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", f"--timeout={timeout_s}s",
        "--latency",
    ]  # fmt: skip
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    if script_args:
        command += ["--", *script_args]
    text = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=duration_s + 30
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:(.*)", text)
    return Result(
        name=name,
        requests_per_s=float(rps.group(1)) if rps else 0.0,
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(1).strip() if errors else "",
    )
