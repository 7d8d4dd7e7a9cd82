"""``python -m app`` as a real child process, for tests that measure it from outside.

Memory, file descriptors, signals and exit codes belong to a process, so these tests
cannot use the in-thread ``LiveServer``. The child runs this checkout's code (cwd and
PYTHONPATH point at the repository) and writes its JSON logs to a file the test reads.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


class AppProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.ps = psutil.Process(proc.pid)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def _limit_fds(soft: int) -> Callable[[], None]:
    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))

    return apply


@contextmanager
def app_process(tmp_path: Path, *, fd_soft_limit: int | None = None,
                argv: list[str] | None = None, **env: str) -> Iterator[AppProcess]:
    """Start the service with ``env`` on a free port; stop it (SIGKILL at worst) after.

    ``argv`` replaces ``python -m app`` (a launcher that patches something, then runs it).
    """
    port = free_port()
    log_path = tmp_path / f"app-{port}.log"
    full_env = {**os.environ, "TTS_ENGINE": "synthetic", "SYNTHETIC_RTF": "0",
                "LOG_FORMAT": "json", "LOG_LEVEL": "info", "PORT": str(port),
                "VOICE_CACHE_DIR": str(tmp_path / "voice-cache"),
                "PYTHONPATH": str(ROOT), **env}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            argv or [sys.executable, "-m", "app"], cwd=ROOT, env=full_env, stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_fds(fd_soft_limit) if fd_soft_limit else None,
        )
    app = AppProcess(proc, port, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(app.http + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + app.logs()[-3000:])
            time.sleep(0.1)
        yield app
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
