"""Prometheus metrics, one registry per app (tests build many apps in one process).

What an operator needs to see and scale a replica: time to first audio and total synthesis
time by engine, preset and route (recorded for every utterance by ``Utterance.close``),
utterances by outcome, sessions and slots in use, queued messages, voice cache hits and
misses by level, store latency, and errors sent to clients by their machine-readable code.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Time to first audio matters around 100-500 ms; whole utterances run for seconds.
TTFA_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2, 5)
TOTAL_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
STORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ttfa = Histogram(
            "tts_time_to_first_audio_seconds",
            "From the text being ready to the first encoded frame, per utterance.",
            ["engine", "preset", "route"], buckets=TTFA_BUCKETS, registry=r,
        )
        self.synthesis = Histogram(
            "tts_synthesis_seconds", "Whole utterance synthesis time (finished ones).",
            ["engine", "preset", "route"], buckets=TOTAL_BUCKETS, registry=r,
        )
        self.utterances = Counter(
            "tts_utterances_total",
            "Utterances (one-shot requests and streaming replies) by how they ended: done, "
            "cancelled, client_gone or an error code.",
            ["engine", "route", "outcome"], registry=r,
        )
        self.errors = Counter(
            "tts_errors_total", "Errors sent to clients, by code.", ["kind"], registry=r
        )
        self.cache = Counter(
            "tts_voice_cache_total", "Voice lookups by cache level and result.",
            ["level", "result"], registry=r,
        )
        self.store_latency = Histogram(
            "tts_voice_store_seconds", "Voice store fetch latency.", ["result"],
            buckets=STORE_BUCKETS, registry=r,
        )
        self.sessions = Gauge(
            "tts_active_sessions", "Open WebSocket sessions.", ["route"], registry=r
        )
        self.slots_in_use = Gauge("tts_slots_in_use", "Synthesis slots in use.", registry=r)
        self.slots_max = Gauge("tts_slots_max", "Synthesis slots per replica.", registry=r)
        self.queue_depth = Gauge(
            "tts_queue_depth", "Messages queued for clients on all sockets.", registry=r
        )
        self.draining = Gauge("tts_draining", "1 while shutting down.", registry=r)

    def bind(
        self,
        slots_in_use: Callable[[], float],
        slots_max: Callable[[], float],
        queue_depth: Callable[[], float],
        draining: Callable[[], float],
    ) -> None:
        """Gauges read at scrape time from the runtime (no bookkeeping to drift)."""
        self.slots_in_use.set_function(slots_in_use)
        self.slots_max.set_function(slots_max)
        self.queue_depth.set_function(queue_depth)
        self.draining.set_function(draining)

    def observe_utterance(
        self, engine: str, preset: str, route: str, outcome: str,
        first_frame_ms: float | None, total_ms: float | None,
    ) -> None:
        """Called once per utterance, by ``Utterance.close`` only."""
        if first_frame_ms is not None:
            self.ttfa.labels(engine, preset, route).observe(first_frame_ms / 1000.0)
        if total_ms is not None:
            self.synthesis.labels(engine, preset, route).observe(total_ms / 1000.0)
        self.utterances.labels(engine, route, outcome[:40]).inc()

    def error(self, code: str) -> None:
        self.errors.labels(code[:40]).inc()

    def cache_lookup(self, level: str, hit: bool) -> None:
        self.cache.labels(level, "hit" if hit else "miss").inc()

    def store_fetch(self, seconds: float, result: str) -> None:
        self.store_latency.labels(result).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
