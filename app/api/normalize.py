"""``POST /normalize``: the spoken form of a text and the map back to the original.

So that a developer can see what the caller will hear before wiring an agent up: the
response is ``app.text.normalize.Normalized.to_dict()``: ``spoken``, the changed ``spans``
(original and spoken offsets and texts) and ``char_map`` (for each original character, the
``[start, end)`` of the spoken text it became). Same API key as the synthesis routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.auth import RequireApiKey
from app.api.deps import RuntimeDep
from app.protocol.normalize import NormalizeRequest
from app.sessions.utterance import check_spec_text
from app.text.normalize import normalize

router = APIRouter()


@router.post("/normalize", dependencies=[RequireApiKey])
async def normalize_text(req: NormalizeRequest, runtime: RuntimeDep) -> dict[str, Any]:
    """What the engine will read for ``text`` in ``language``, with the character map."""
    text = check_spec_text(runtime, req.text)  # the same checks as before synthesis
    return normalize(text, req.language).to_dict()
