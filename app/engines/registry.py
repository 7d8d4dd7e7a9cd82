"""Which engine this process runs, and why.

``TTS_ENGINE=auto`` (the default) picks Chatterbox when CUDA and the ``chatterbox`` extra
are both present, else Piper. The reason is logged at start-up and shown by ``/health``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.engines.base import Engine
from app.errors import EngineUnavailable


@dataclass(frozen=True)
class EngineChoice:
    name: str
    reason: str


def _chatterbox_status() -> tuple[bool, bool]:
    """(extra installed, CUDA available), without importing torch when the extra is absent."""
    try:
        from app.engines.chatterbox import cuda_available, extra_installed
    except ImportError:
        return False, False
    if not extra_installed():
        return False, False
    return True, cuda_available()


def choose_engine(settings: Settings) -> EngineChoice:
    if settings.tts_engine != "auto":
        return EngineChoice(settings.tts_engine, f"TTS_ENGINE={settings.tts_engine}")
    installed, cuda = _chatterbox_status()
    if installed and cuda:
        return EngineChoice("chatterbox", "auto: CUDA available and chatterbox extra installed")
    why = "chatterbox extra not installed" if not installed else "no CUDA device"
    return EngineChoice("piper", f"auto: {why}, using the CPU engine")


def build_engine(name: str, settings: Settings) -> Engine:
    if name == "piper":
        from app.engines.piper import PiperEngine

        return PiperEngine(settings)
    if name == "synthetic":
        from app.engines.synthetic import SyntheticEngine

        return SyntheticEngine(settings)
    if name == "chatterbox":
        try:
            from app.engines.chatterbox import ChatterboxEngine
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise EngineUnavailable(f"chatterbox engine unavailable: {exc}") from exc
        return ChatterboxEngine(settings)
    raise EngineUnavailable(f"Unknown engine: {name}")
