"""A sticky engine fault (a CUDA error) takes the replica out: unready, drained, exit non-zero.

Driven against a real process (``tests/faulty_app.py``: ``python -m app``'s entry point
with a synthetic engine that fails like a poisoned CUDA context), because the point is
what the orchestrator sees: ``/ready`` 503 and a non-zero exit code after the drain.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from app.engines.faults import is_sticky
from app.server import EXIT_ENGINE_FAULT
from tests.app_process import ROOT, app_process


@pytest.mark.parametrize(("error", "sticky"), [
    (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
    (RuntimeError("CUDA error: device-side assert triggered"), True),
    (RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), False),
    (RuntimeError("shape mismatch in decoder"), False),
    (ValueError("bad text"), False),
])
def test_which_errors_are_sticky(error: Exception, sticky: bool) -> None:
    assert is_sticky(error) is sticky


@pytest.mark.slow
def test_a_cuda_fault_makes_the_replica_unready_drain_and_exit_non_zero(tmp_path: Path) -> None:
    argv = [sys.executable, str(ROOT / "tests" / "faulty_app.py")]
    with app_process(tmp_path, argv=argv, SYNTHETIC_RTF="0.3", SYNTHETIC_CHUNK_MS="100",
                     SHUTDOWN_GRACE_SECONDS="5") as app:
        with connect(f"ws://127.0.0.1:{app.port}/ws/synthesize-stream", close_timeout=1) as call:
            call.send(json.dumps({"type": "init", "voice_id": "default"}))
            assert json.loads(call.recv())["type"] == "ready"
            call.send(json.dumps({"type": "text", "content": "A call that is in progress. "}))
            bad = httpx.post(app.http + "/synthesize", timeout=30, json={
                "text": "POISON this sentence, which is long enough for two chunks.",
                "voice_id": "default"})
            assert bad.status_code == 503 and bad.json()["code"] == "engine_fault"
            assert bad.headers["retry-after"]
            faulted_at = time.monotonic()
            try:  # the process may already be draining: refused either way
                ready = httpx.get(app.http + "/ready", timeout=5)
                assert ready.status_code == 503
                again = httpx.post(app.http + "/synthesize", timeout=30,
                                   json={"text": "Hello there.", "voice_id": "default"})
                assert again.status_code == 503
            except httpx.TransportError:
                pass
        try:
            code = app.proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail("the process did not exit after the engine fault")
        assert code == EXIT_ENGINE_FAULT
        assert time.monotonic() - faulted_at < 5 + 15
        logs = app.logs()
    assert "sticky engine fault" in logs
