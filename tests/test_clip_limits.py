"""Reference clips are judged by their header before a sample is decoded.

The FLAC bomb (8 channels at 655,350 Hz, a minute of silence: 1.26 GB as float32, a few
kilobytes as FLAC) and a 64-byte WAV at 1 Hz are refused with 422 saying what is wrong,
without the memory that decoding them would take, and nothing of them is cached.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from app.errors import VoiceInvalid
from app.voices.decode import decode_clip
from tests.app_process import ROOT, app_process
from tests.hostile_clips import flac_bomb, tiny_wav


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory of a process (Linux ``VmHWM``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def encoded(rate: int, channels: int, seconds: float, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(rate * seconds), channels), dtype=np.float32), rate,
             format=fmt, subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize(("data", "says"), [
    (flac_bomb(), "sample rate not accepted: v is 655350 Hz"),
    (tiny_wav(), "sample rate not accepted: v is 1 Hz"),
    (encoded(96_000, 1, 6), "sample rate not accepted: v is 96000 Hz"),
    (encoded(16_000, 3, 6), "has 3 channels"),
    (flac_bomb(rate=16_000, channels=8, seconds=6), "has 8 channels"),
    (encoded(16_000, 1, 6, "AIFF"), "format not accepted: v is AIFF"),
    (encoded(16_000, 1, 6, "W64"), "format not accepted: v is W64"),
    (flac_bomb(rate=48_000, channels=2, seconds=3600), "too long: v is 3600.00 s"),
])
def test_header_checks_say_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(VoiceInvalid) as info:
        decode_clip("v", data, 16_000, 5.0, 60.0)
    assert says in info.value.message
    assert info.value.status_code == 422


@pytest.mark.parametrize(("rate", "channels"), [(8_000, 1), (48_000, 2), (22_050, 2)])
def test_clips_inside_the_limits_still_decode(rate: int, channels: int) -> None:
    clip = decode_clip("v", encoded(rate, channels, 6), 16_000, 5.0, 60.0)
    assert clip.sample_rate == 16_000 and len(clip.samples) == 96_000


def test_the_bomb_costs_no_memory_to_refuse() -> None:
    # In a fresh process, so the peak is this decode's and nothing else's.
    script = (
        "import json, sys\n"
        "from tests.hostile_clips import flac_bomb\n"
        "from tests.test_clip_limits import vm_hwm_mb\n"
        "from app.voices.decode import decode_clip\n"
        "from app.errors import VoiceInvalid\n"
        "data = flac_bomb()\n"
        "before = vm_hwm_mb()\n"
        "try:\n"
        "    decode_clip('bomb', data, 22050, 5.0, 60.0)\n"
        "    said = 'accepted'\n"
        "except VoiceInvalid as exc:\n"
        "    said = exc.message\n"
        "print(json.dumps({'growth_mb': vm_hwm_mb() - before, 'said': said}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         timeout=120, check=True)
    result = json.loads(out.stdout)
    assert "sample rate" in result["said"]
    assert result["growth_mb"] <= 50


@pytest.mark.slow
def test_a_served_bomb_is_422_costs_under_50_mb_and_is_not_cached(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    for name, data in (("bomb", flac_bomb()), ("hertz", tiny_wav()),
                       ("fine", encoded(16_000, 1, 6))):
        (voices / name).mkdir(parents=True)
        (voices / name / "sample.wav").write_bytes(data)
    cache = tmp_path / "voice-cache"
    with app_process(tmp_path, VOICES_DIR=str(voices), VOICE_CACHE_DIR=str(cache)) as app:
        ok = httpx.post(app.http + "/synthesize", json={"text": "Hi.", "voice_id": "fine"},
                        timeout=60)
        assert ok.status_code == 200, ok.text
        before = vm_hwm_mb(app.proc.pid)
        for name, says in (("bomb", "655350 Hz"), ("hertz", "1 Hz")):
            r = httpx.post(app.http + "/synthesize", json={"text": "Hi.", "voice_id": name},
                           timeout=60)
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "voice_invalid" and says in r.json()["error"]
        growth = vm_hwm_mb(app.proc.pid) - before
        assert httpx.get(app.http + "/health").status_code == 200
    assert growth <= 50
    cached = " ".join(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())
    assert "fine" in cached  # the cache works; it just holds nothing that failed
    assert "bomb" not in cached and "hertz" not in cached
