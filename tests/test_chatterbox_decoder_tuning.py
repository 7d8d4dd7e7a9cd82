"""The streaming decoder's settings reach every stream (tiny Turbo on CPU).

``CHATTERBOX_LOOKAHEAD_TOKENS`` and ``CHATTERBOX_VOCODER_HOLD_FRAMES`` trade seam error for
lag: each token of look-ahead holds back 2 mel frames (40 ms), each held frame 20 ms, so
the first chunk of a tuned engine is longer by exactly that much for the same tokens.
``CHATTERBOX_FLOW_CONTEXT_TOKENS`` caps what each flow run re-reads, so a chunk's cost
stops growing with the sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from app.config import Settings
from app.engines.base import AudioChunk, SynthesisParams
from app.presets import PRESETS
from tests.chatterbox_fixtures import (  # noqa: F401  (fixtures)
    make_engine,
    tiny_turbo_dir,
    turbo_engine,
)

pytestmark = [pytest.mark.chatterbox, pytest.mark.timeout(900)]

PRESET = "realtime"  # 10-token chunks: several seams inside the tiny model's 48 tokens
TEXT = "Thanks for calling, how can I help you today?"
SAMPLES_PER_FRAME = 480  # 20 ms at 24 kHz


@pytest.fixture(scope="module")
def tuned_engine(tiny_turbo_dir: Path) -> Iterator[object]:  # noqa: F811
    engine = make_engine("turbo", tiny_turbo_dir, max_concurrent_streams=2,
                         chatterbox_lookahead_tokens=3, chatterbox_vocoder_hold_frames=0,
                         chatterbox_flow_context_tokens=8)
    yield engine
    asyncio.run(engine.aclose())


def _run(engine, monkeypatch: pytest.MonkeyPatch) -> tuple[list[AudioChunk], list[int]]:
    """The chunks of one seeded reply, and the token count of every flow run it made."""
    from app.engines.chatterbox import decoder

    windows: list[int] = []
    real = decoder.flow_mel

    def spy(s3gen, ref, tokens, z, **kwargs):
        windows.append(int(tokens.shape[1]))
        return real(s3gen, ref, tokens, z, **kwargs)

    monkeypatch.setattr(decoder, "flow_mel", spy)

    async def go() -> list[AudioChunk]:
        voice = await engine.prepare_voice(None)
        params = SynthesisParams(preset=PRESETS[PRESET], seed=5)
        return [chunk async for chunk in engine.stream(TEXT, voice, params)]

    try:
        return asyncio.run(go()), windows
    finally:
        monkeypatch.setattr(decoder, "flow_mel", real)


def test_less_lookahead_and_hold_give_a_longer_first_chunk_by_exactly_their_frames(
    turbo_engine, tuned_engine, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    default, _ = _run(turbo_engine, monkeypatch)
    tuned, _ = _run(tuned_engine, monkeypatch)
    assert len(default) >= 3 and len(tuned) >= 3
    # One token less look-ahead (2 frames) and 6 frames less hold: 8 frames = 160 ms sooner.
    gained = len(tuned[0].samples) - len(default[0].samples)
    assert gained == (2 * (4 - 3) + (6 - 0)) * SAMPLES_PER_FRAME
    # The same tokens (same seed) give the same amount of audio in all.
    def total(chunks: list[AudioChunk]) -> int:
        return sum(len(c.samples) - c.overlap for c in chunks)

    assert total(tuned) == total(default)


def test_a_context_cap_bounds_what_every_flow_run_reads(
    turbo_engine, tuned_engine, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    _, whole = _run(turbo_engine, monkeypatch)
    _, capped = _run(tuned_engine, monkeypatch)
    # Uncapped, each run re-reads the sentence so far, so the last one reads it all.
    assert whole == sorted(whole) and whole[-1] > 30
    # Capped: 8 committed tokens, at most one chunk (10) and the look-ahead (3) beyond them,
    # plus the final run's silence tokens and one for an odd frame count.
    chunk = PRESETS[PRESET].chunk_size
    assert len(capped) == len(whole)
    assert max(capped) <= 8 + chunk + 3 + 3 + 1 < whole[-1]


@pytest.mark.parametrize("field, value", [
    ("chatterbox_lookahead_tokens", 2),  # below the flow's own 3-token pre-lookahead
    ("chatterbox_vocoder_hold_frames", -1),
    ("chatterbox_flow_context_tokens", -5),
])
def test_decoder_settings_out_of_range_are_refused_at_startup(field: str, value: int) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        Settings(_env_file=None, **{field: value})


def test_the_engine_declares_the_overlap_its_vocoder_makes() -> None:
    """The crossfader holds back the declared maximum of every chunk: more than the
    vocoder re-decodes is lag for nothing, less would cut a seam's blend short."""
    from app.engines.chatterbox.engine import OVERLAP_SAMPLES, capabilities_for
    from app.engines.chatterbox.vocoder import OVERLAP_FRAMES, SAMPLES_PER_FRAME

    assert OVERLAP_SAMPLES == OVERLAP_FRAMES * SAMPLES_PER_FRAME
    assert capabilities_for("turbo").max_overlap_samples == OVERLAP_SAMPLES
