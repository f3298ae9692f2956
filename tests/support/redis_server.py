"""A redis-server of a test's own, on a free port, that the test can stop and start again.

Data lives in the test's directory with an append-only file fsynced on every write, so
what was queued survives a stop and start, as it does on a Redis deployed with
persistence. ``/usr/bin/redis-server`` comes from Debian's redis-server package
(tests/run_tests.sh installs it when missing); without it the test is skipped, or fails
in CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

START_TIMEOUT = 20.0


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else "")
    if not found:
        message = "redis-server is not installed (apt-get install redis-server; tests/run_tests.sh does)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    """True when something on 127.0.0.1:port answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()`` / ``stop()`` a redis-server on one port (kept across restarts) in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                   "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes",
                   "--logfile", str(self.directory / "redis.log"), "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if answers(self.port):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.directory / "redis.log").read_text(errors="replace")[-2000:] if (
            self.directory / "redis.log").exists() else ""
        self.stop()
        pytest.fail(f"redis-server on port {self.port} did not start:\n{log}")

    def stop(self) -> None:
        """SIGTERM (Redis flushes the append-only file and exits); wait until the port is closed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        deadline = time.monotonic() + 10
        while answers(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
