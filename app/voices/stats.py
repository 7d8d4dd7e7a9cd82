"""Counters of the voices layer that ``/health`` shows: store fetches and revalidations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class StoreStats:
    def __init__(self) -> None:
        self.fetches = 0
        self.ok = 0
        self.not_found = 0
        self.errors = 0
        self.total_ms = 0.0
        self.last_ms: float | None = None
        self.max_ms = 0.0

    def record(self, ms: float) -> None:
        self.fetches += 1
        self.total_ms += ms
        self.last_ms = ms
        self.max_ms = max(self.max_ms, ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fetches": self.fetches,
            "hits": self.ok,
            "not_found": self.not_found,
            "errors": self.errors,
            "latency_ms": {
                "last": None if self.last_ms is None else round(self.last_ms, 2),
                "avg": round(self.total_ms / self.fetches, 2) if self.fetches else None,
                "max": round(self.max_ms, 2),
            },
        }


@dataclass
class RevalidationStats:
    checks: int = 0
    not_modified: int = 0
    replaced: int = 0
    gone: int = 0
    errors: int = 0

    def to_dict(self, interval_s: float, in_flight: int) -> dict[str, Any]:
        return {
            "interval_s": interval_s,
            "in_flight": in_flight,
            "checks": self.checks,
            "not_modified": self.not_modified,
            "replaced": self.replaced,
            "gone": self.gone,
            "errors": self.errors,
        }
