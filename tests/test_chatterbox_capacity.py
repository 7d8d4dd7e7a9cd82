"""Capacity tooling around the batched engine: the admission budget, bf16 on CPU, the GPU
benchmark's per-family checkpoints, the image's build context, and the capacity benchmark
end to end on a tiny checkpoint (small sizes: it checks the shape of the report, not speed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from app.engines.base import SynthesisParams
from app.engines.chatterbox.budget import fit, probe_sizes
from app.presets import PRESETS
from tests.chatterbox_fixtures import make_engine, tiny_turbo_dir  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budget_admits_the_most_streams_whose_step_leaves_real_time() -> None:
    # 40 ms per token, half of it for the step: 20 ms.
    assert fit({1: 0.005, 2: 0.008, 4: 0.012, 8: 0.028}) == 6  # between 4 and 8
    assert fit({1: 0.005, 2: 0.008, 4: 0.012, 8: 0.018}) == 8
    assert fit({1: 0.090}) == 1  # slower than real time: still one stream, never zero
    assert probe_sizes(8) == [1, 2, 4, 8] and probe_sizes(6) == [1, 2, 4, 6]


def test_gpu_benchmark_takes_a_checkpoint_per_family() -> None:
    bench = load_bench("chatterbox_gpu")
    p = argparse.ArgumentParser()
    dirs = bench.ckpt_dirs(p, ["turbo=/m/t", "standard=/m/s"], ["turbo", "standard"])
    assert dirs == {"turbo": Path("/m/t"), "standard": Path("/m/s")}
    assert bench.ckpt_dirs(p, ["/m/t"], ["turbo"]) == {"turbo": Path("/m/t")}
    with pytest.raises(SystemExit):  # one directory cannot serve two families
        bench.ckpt_dirs(p, ["/m/t"], ["turbo", "standard"])


def test_image_context_has_the_benchmarks_and_the_dependency_constraints() -> None:
    ignore = (ROOT / ".dockerignore").read_text()
    assert "!benchmarks/" in ignore and "benchmarks/results/" in ignore
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c constraints-chatterbox.txt" in dockerfile and "benchmarks/" in dockerfile
    constraints = (ROOT / "deploy" / "constraints-chatterbox.txt").read_text()
    for name in ("s3tokenizer==", "resemble-perth==", "spacy-pkuseg==", "pyloudnorm=="):
        assert name in constraints


@pytest.mark.chatterbox
def test_bfloat16_backbone_runs_on_cpu(tiny_turbo_dir) -> None:  # noqa: F811
    import torch

    engine = make_engine("turbo", tiny_turbo_dir, chatterbox_dtype="bfloat16",
                         chatterbox_stream_budget=2, watermark=False)
    try:
        assert engine._model.t3.speech_head.weight.dtype == torch.bfloat16
        assert engine._model.s3gen.dtype == torch.float32  # the decoder stays float32
        voice = asyncio.run(engine.prepare_voice(None))

        async def run() -> list:
            params = SynthesisParams(preset=PRESETS["realtime"], seed=3)
            return [c async for c in engine.stream("Hello there, friend.", voice, params)]

        chunks = asyncio.run(run())
        assert chunks and all(np.isfinite(c.samples).all() for c in chunks)
        assert engine.stats()["dtype"] == "bfloat16"
    finally:
        asyncio.run(engine.aclose())


@pytest.mark.chatterbox
def test_budget_measured_at_load_comes_from_the_step_times(tiny_turbo_dir) -> None:  # noqa: F811
    """With ``CHATTERBOX_STREAM_BUDGET=0`` the engine probes its own scheduler at load; the
    figure depends on this machine's speed, so only its shape and bounds are checked."""
    engine = make_engine("turbo", tiny_turbo_dir, chatterbox_stream_budget=0,
                         max_concurrent_streams=2, watermark=False)
    try:
        budget = engine.stats()["budget"]
        assert budget["source"] == "measured at load" and budget["step_ms"]["1"] > 0
        assert 1 <= budget["streams"] == engine.capacity <= 2
        assert fit({int(n): ms / 1000 for n, ms in budget["step_ms"].items()}) == budget["streams"]
    finally:
        asyncio.run(engine.aclose())


@pytest.mark.chatterbox
def test_capacity_benchmark_reports_both_modes(tiny_turbo_dir, tmp_path) -> None:  # noqa: F811
    bench = load_bench("chatterbox_capacity")
    out = tmp_path / "capacity.json"
    report = bench.main(["--ckpt-dir", str(tiny_turbo_dir), "--device", "cpu",
                         "--streams", "1,2", "--tokens", "14", "--probes", "1",
                         "--preset", "realtime", "--no-watermark", "--prompt-cache", "both",
                         "--json", str(out)])
    assert set(report) == {"batched", "interleaved"}
    keys = {"aggregate_tokens_per_s", "first_token_p50_ms", "first_token_p95_ms",
            "per_stream_rtf", "ttfa_p50_ms", "ttfa_p95_ms"}
    for mode in report.values():
        assert set(mode) == {"1", "2"} and all(set(row) == keys for row in mode.values())
        assert all(row["aggregate_tokens_per_s"] > 0 for row in mode.values())
    assert json.loads(out.read_text()) == report
    details = json.loads(out.with_suffix(".details.json").read_text())
    assert details["step_ms_by_batch"]["2"] > 0
    first = details["prompt_cache"]["first_token_alone_ms"]  # prefix cache off against a hit
    assert len(first["off"]) == len(first["on_hit"]) == 1 and first["on_miss"] > 0
    assert details["prompt_cache"]["stats"]["hits"] == 1
