"""Engines against the contract: off-loop inference, early stop, piper pieces, synthetic."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.engines.base import Engine, SynthesisParams, iterate_blocking
from app.engines.piper import PiperEngine, plan_pieces
from app.engines.registry import build_engine
from app.engines.synthetic import SyntheticEngine, render
from app.presets import get_preset
from tests.servers import make_settings

PARAMS = SynthesisParams(preset=get_preset("balanced"))


async def test_iterate_blocking_runs_off_the_loop_and_stops_within_one_step() -> None:
    loop_thread = threading.get_ident()
    steps: list[int] = []
    threads: set[int] = set()
    closed = threading.Event()

    def gen(stop: threading.Event) -> Iterator[int]:
        try:
            for i in range(1000):
                if stop.is_set():
                    return
                threads.add(threading.get_ident())
                time.sleep(0.01)
                steps.append(i)
                yield i
        finally:
            closed.set()

    with ThreadPoolExecutor(1) as pool:
        agen = iterate_blocking(gen, pool)
        got = []
        async for item in agen:
            got.append(item)
            if len(got) == 3:
                break
        await agen.aclose()
        assert closed.wait(1)
    assert loop_thread not in threads
    assert got == [0, 1, 2]
    assert len(steps) <= 4  # at most the one step that was already running


async def test_iterate_blocking_cancelled_task_waits_for_running_step_then_closes() -> None:
    running = threading.Event()
    finished_step = threading.Event()
    closed = threading.Event()

    def gen(stop: threading.Event) -> Iterator[int]:
        try:
            running.set()
            time.sleep(0.2)
            finished_step.set()
            yield 1
            yield 2
        finally:
            closed.set()

    async def consume() -> None:
        async for _ in iterate_blocking(gen, pool):
            pass

    with ThreadPoolExecutor(1) as pool:
        task = asyncio.create_task(consume())
        await asyncio.to_thread(running.wait, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The step that was running finished before the generator was closed.
        assert finished_step.is_set()
        assert closed.wait(1)


def test_plan_pieces_first_piece_short_and_nothing_lost() -> None:
    text = (
        "Sure, I can help with that. Your appointment with Dr. Smith is at 3:30 p.m. on "
        "Friday, and the copay is $25.50. Is there anything else?"
    )
    pieces = plan_pieces(text)
    assert pieces[0] == "Sure,"
    assert " ".join(pieces).split() == text.split()
    assert all(len(p) <= 220 for p in pieces)
    assert plan_pieces("   ") == []
    assert plan_pieces("Hello there.") == ["Hello there."]


def test_synthetic_is_deterministic_and_speech_band() -> None:
    a = render("Hello world.")
    b = render("Hello world.")
    assert np.array_equal(a, b)
    spectrum = np.abs(np.fft.rfft(a)) ** 2
    freqs = np.fft.rfftfreq(len(a), 1 / 24000)
    assert spectrum[(freqs > 300) & (freqs < 3400)].sum() / spectrum.sum() > 0.8


async def test_synthetic_first_chunk_delay_and_rtf() -> None:
    engine = SyntheticEngine(
        make_settings(synthetic_rtf=0.5, synthetic_first_chunk_ms=100, synthetic_chunk_ms=100)
    )
    voice = await engine.prepare_voice(None)
    start = time.perf_counter()
    times = []
    async for _chunk in engine.stream("Hello world, again.", voice, PARAMS):
        times.append(time.perf_counter() - start)
    assert 0.09 < times[0] < 0.2
    # Later chunks: 100 ms of audio every 50 ms.
    assert times[-1] - times[0] == pytest.approx(0.05 * (len(times) - 1), rel=0.3, abs=0.05)


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperEngine]:
    engine = PiperEngine(make_settings(tts_engine="piper"))
    asyncio.run(engine.load())
    yield engine
    asyncio.run(engine.aclose())


def test_piper_satisfies_the_contract(piper: PiperEngine) -> None:
    assert isinstance(piper, Engine)
    assert piper.sample_rate == 22050
    assert piper.capabilities.cloning is False


async def test_piper_streams_piece_by_piece(piper: PiperEngine) -> None:
    voice = await piper.prepare_voice(None)
    assert voice.builtin
    chunks = [c async for c in piper.stream("Sure, I can help. Anything else?", voice, PARAMS)]
    assert len(chunks) == 3
    for chunk in chunks:
        assert chunk.samples.dtype == np.float32 and chunk.overlap == 0
        assert 0.01 < np.abs(chunk.samples).max() <= 1.0
    first = chunks[0].samples
    assert len(first) / 22050 < 1.2  # "Sure," alone


async def test_piper_close_stops_before_the_next_piece(piper: PiperEngine) -> None:
    voice = await piper.prepare_voice(None)
    text = "One. " + " ".join(f"Sentence number {i} is here." for i in range(30))
    stream = piper.stream(text, voice, PARAMS)
    start = time.perf_counter()
    async for _ in stream:
        break
    await stream.aclose()
    elapsed = time.perf_counter() - start
    assert piper.active_generations == 0
    assert elapsed < 2.0  # 30 sentences would take several seconds


async def test_piper_speed_changes_duration(piper: PiperEngine) -> None:
    # Piper's length varies from run to run by design: the voice's stochastic duration
    # predictor draws fresh noise each run (two unseeded RandomNormalLike ops in the ONNX
    # graph, noise_w 0.8), with a long upper tail. In 150 runs of this text, speed 1.5 gave
    # a median of 37,120 samples but up to 46,080, and speed 1.0 a median of 50,944 (never
    # under 48,384): one run each fails the 0.85 bound now and then, which is what made
    # this test flaky (it is not two runs interfering). The shortest of five runs sits
    # near the bottom of that tight lower tail, so compare those.
    voice = await piper.prepare_voice(None)
    text = "This sentence is spoken at two speeds."
    fast_params = SynthesisParams(preset=get_preset("balanced"), speed=1.5)

    async def shortest(params: SynthesisParams) -> int:
        return min([sum([len(c.samples) async for c in piper.stream(text, voice, params)])
                    for _ in range(5)])

    assert await shortest(fast_params) < 0.85 * await shortest(PARAMS)


def test_build_engine_by_name() -> None:
    assert build_engine("synthetic", make_settings()).name == "synthetic"
    assert build_engine("piper", make_settings()).name == "piper"
