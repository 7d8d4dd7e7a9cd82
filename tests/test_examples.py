"""The examples work against a real local server: run as their users run them (subprocesses).

- ``examples/llm_to_wav.py`` streams a simulated LLM reply and writes a WAV with speech in
  it (synthetic engine, and once with Piper), printing every clause.
- ``examples/twilio_bridge.py`` plays Twilio's part of a call through a fake Twilio socket:
  media and marks with the call's ``streamSid`` reach "Twilio", and a barge-in produces a
  ``clear`` after which no audio of the cancelled reply follows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import websockets

from app.text import ClauseSegmenter
from tests.servers import LiveServer, free_port, live_server, make_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL_SID = "CA5ab3f6a5ea6f4a5b0a6cfa9e1f3b8c8d"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    # Production at half real time, so a reply is still being generated when the caller
    # barges in; the WAV test does not care about the pace.
    settings = make_settings(synthetic_rtf=0.5, synthetic_chunk_ms=100)
    with live_server(settings) as s:
        yield s


def run_llm_to_wav(url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # -W error: the example must filter the audioop warning itself, and only it.
        [sys.executable, "-W", "error", str(EXAMPLES / "llm_to_wav.py"), "--url", url,
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=90, cwd=ROOT,
    )


def voiced_seconds(path: Path) -> float:
    """Seconds of 20 ms windows whose RMS is clearly above silence."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    windows = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((windows**2).mean(axis=1))
    return float((rms > 300).sum() * 0.02)


def check_llm_to_wav(proc: subprocess.CompletedProcess[str], out: Path) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "first audio after" in proc.stdout
    clauses = [line for line in proc.stdout.splitlines() if line.startswith("clause ")]
    assert len(clauses) >= 3, proc.stdout
    assert clauses[0].startswith("clause 0: 'Sure, I can help with that.'")
    assert voiced_seconds(out) > 1.0


def test_llm_to_wav_writes_speech_and_prints_clauses(server: LiveServer, tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    proc = run_llm_to_wav(server.ws, out, "--api-key", "not-checked-here")
    check_llm_to_wav(proc, out)


@pytest.mark.slow
def test_llm_to_wav_with_piper(tmp_path: Path) -> None:
    out = tmp_path / "reply.wav"
    with live_server(make_settings(tts_engine="piper")) as piper:
        proc = run_llm_to_wav(piper.ws, out, "--text", "Sure, I can help with that. "
                              "Your appointment is on Friday at 3:30 p.m. See you then!")
    check_llm_to_wav(proc, out)


def test_llm_to_wav_reports_a_refused_init(server: LiveServer, tmp_path: Path) -> None:
    proc = run_llm_to_wav(server.ws, tmp_path / "x.wav", "--voice", "no-such-voice")
    assert proc.returncode == 1
    assert "voice_not_found" in proc.stderr


@pytest.fixture
def bridge(server: LiveServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "bridge.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "twilio_bridge.py"), "--port", str(port),
         "--tts-url", server.ws, "--barge-in-after", "2.0"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until it listens
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("bridge did not start") from None
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


async def test_twilio_bridge_forwards_media_and_marks_and_clears_on_barge_in(
    bridge: str,
) -> None:
    events: list[dict[str, Any]] = []
    async with websockets.connect(bridge) as twilio:
        # What Twilio sends when a <Stream> starts (Media Streams docs, "Messages").
        await twilio.send(json.dumps({"event": "connected", "protocol": "Call",
                                      "version": "1.0.0"}))
        await twilio.send(json.dumps({
            "event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
            "start": {
                "accountSid": "AC00000000000000000000000000000000", "streamSid": STREAM_SID,
                "callSid": CALL_SID, "tracks": ["inbound"], "customParameters": {},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }))
        while True:
            event = json.loads(await asyncio.wait_for(twilio.recv(), 15))
            events.append(event)
            if event["event"] == "mark":  # Twilio echoes a mark once it has been played
                await twilio.send(json.dumps({"event": "mark", "streamSid": STREAM_SID,
                                              "sequenceNumber": "9", "mark": event["mark"]}))
            if event["event"] == "clear":
                break
        # Nothing of the cancelled reply may follow the clear.
        with pytest.raises(asyncio.TimeoutError):
            after = await asyncio.wait_for(twilio.recv(), 1.0)
            pytest.fail(f"sent after clear: {after[:120]!r}")
        await twilio.send(json.dumps({"event": "stop", "streamSid": STREAM_SID,
                                      "stop": {"callSid": CALL_SID}}))

    media = [e for e in events if e["event"] == "media"]
    marks = [e for e in events if e["event"] == "mark"]
    assert events[-1] == {"event": "clear", "streamSid": STREAM_SID}
    assert len(media) > 25  # more than half a second of audio
    assert all(e["streamSid"] == STREAM_SID and e["media"]["payload"] for e in media)
    assert marks and all(e["streamSid"] == STREAM_SID for e in marks)
    assert marks[0]["mark"]["name"] == "clause-0"
    # The barge-in cut the greeting short: fewer clauses were sent than it has.
    greeting = load_example("twilio_bridge").GREETING
    segmenter = ClauseSegmenter(max_chars=250)
    clauses = segmenter.push(greeting) + segmenter.flush()
    assert len(marks) < len(clauses)


def test_simulated_llm_tokens_join_back_to_the_reply() -> None:
    example = load_example("llm_to_wav")
    tokens = example.llm_tokens(example.DEFAULT_REPLY)
    assert "".join(tokens) == example.DEFAULT_REPLY
    assert len(tokens) > 40 and max(len(t) for t in tokens) <= 6
