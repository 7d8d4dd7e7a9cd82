"""The Chatterbox GPU benchmark runs end to end on CPU with a tiny random checkpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.chatterbox_fixtures import tiny_turbo_dir  # noqa: F401  (fixture)

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "chatterbox_gpu.py"


@pytest.mark.chatterbox
@pytest.mark.timeout(900)  # three streams and a concurrent pair: 2-3 min idle, more loaded
def test_benchmark_reports_ttfa_rtf_and_concurrency(tiny_turbo_dir, tmp_path, capsys) -> None:  # noqa: F811
    spec = importlib.util.spec_from_file_location("chatterbox_gpu", BENCH)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "bench.json"
    report = bench.main([
        "--families", "turbo", "--presets", "realtime", "--runs", "2", "--warmup", "1",
        "--concurrency", "2", "--ckpt-dir", str(tiny_turbo_dir), "--device", "cpu",
        "--json", str(out),
    ])
    entry = report["families"]["turbo"]["presets"]["realtime"]
    assert entry["single"]["n"] == 2 and entry["single"]["ttfa_ms_p50"] > 0
    assert entry["single"]["rtf_p95"] >= entry["single"]["rtf_p50"] > 0
    assert entry["concurrent"]["streams"] == 2 and entry["concurrent"]["n"] == 2
    assert entry["gpu_mem_gib"] is None  # CPU
    assert json.loads(out.read_text())["families"]["turbo"]["device"] == "cpu"
    assert "TTFA p50" in capsys.readouterr().out
