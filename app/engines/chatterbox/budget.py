"""The admission budget: how many streams the token loop can carry in real time, measured.

A speech token is 40 ms of audio (25 per second), so a batch of N streams keeps up while
one batched step takes under 40 ms. The step must also leave time for prefills of joining
streams and for decodes that share the device, so only ``STEP_SHARE`` of the token period
is given to the step. At load the engine runs batches of 1, 2, 4, ... streams of fixed
length through its own scheduler, takes the median step time at each size, and admits the
largest N (interpolated between measured sizes) whose step fits; never fewer than one.
"""

from __future__ import annotations

import statistics
from typing import Any

TOKEN_S = 0.040  # one S3 speech token at 25 Hz
STEP_SHARE = 0.5
PROBE_TOKENS = 12
PROBE_TEXT = "Hello, this is a capacity probe."


def probe_sizes(max_streams: int) -> list[int]:
    sizes, n = [], 1
    while n < max_streams:
        sizes.append(n)
        n *= 2
    return sizes + [max_streams]


def fit(step_s: dict[int, float], share: float = STEP_SHARE) -> int:
    """Largest stream count whose step time (linear between measured sizes) fits."""
    limit = TOKEN_S * share
    sizes = sorted(step_s)
    best = 1
    for lo, hi in zip(sizes, sizes[1:] + [None], strict=True):
        if step_s[lo] > limit:
            break
        best = lo
        if hi is None:
            break
        if step_s[hi] > limit:
            span = (limit - step_s[lo]) / max(step_s[hi] - step_s[lo], 1e-9)
            best = lo + int(span * (hi - lo))
            break
    return max(best, 1)


def measure_capacity(scheduler: Any, model: Any, family: str, conds: Any,
                     max_streams: int) -> dict[str, Any]:
    """Run probe batches through ``scheduler``; the budget and what it was based on."""
    from app.engines.base import SynthesisParams
    from app.engines.chatterbox import runtime
    from app.presets import PRESETS

    params = SynthesisParams(preset=PRESETS["balanced"], seed=0)
    plan = runtime.Plan.build(family, params)
    step_s: dict[int, float] = {}
    for n in probe_sizes(max_streams):
        scheduler.step_log.clear()
        streams = [
            scheduler.submit(runtime.token_request(
                model, family, PROBE_TEXT, "en", runtime.request_cond(conds, plan), plan,
                fixed_tokens=PROBE_TOKENS))
            for _ in range(n)
        ]
        for s in streams:
            s.wait_for(1 << 30)
        full = [t for size, t in scheduler.step_log if size == n]
        step_s[n] = statistics.median(full or [t for _, t in scheduler.step_log])
        if step_s[n] > TOKEN_S * STEP_SHARE:
            break
    return {
        "streams": fit(step_s),
        "source": "measured at load",
        "step_ms": {str(n): round(t * 1000, 2) for n, t in step_s.items()},
        "token_ms": TOKEN_S * 1000,
        "step_share": STEP_SHARE,
    }
