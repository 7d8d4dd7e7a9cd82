"""``python -m app`` with a fault-injecting engine: text containing POISON breaks the engine
the way a CUDA error does (``RuntimeError("CUDA error: an illegal memory access ...")`` after
its first chunk). Run as a script by tests/test_engine_fault.py; everything else is the
real entry point (``app.__main__.main``), signal handling and exit code included.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.__main__ import main  # noqa: E402
from app.engines.base import AudioChunk  # noqa: E402
from app.engines.synthetic import SyntheticEngine  # noqa: E402

_real_stream = SyntheticEngine.stream


async def _poisoned_stream(self: SyntheticEngine, text: str, voice: Any,
                           params: Any) -> AsyncGenerator[AudioChunk, None]:
    first = True
    async for chunk in _real_stream(self, text, voice, params):
        if not first and "POISON" in text:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        first = False
        yield chunk


SyntheticEngine.stream = _poisoned_stream  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
