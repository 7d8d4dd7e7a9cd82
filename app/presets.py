"""Synthesis presets (DESIGN.md): named bundles of Chatterbox parameters.

Engines map what applies to them; ``Engine.capabilities.preset_fields`` says which fields
the running engine uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from app.errors import InvalidRequest


@dataclass(frozen=True)
class Preset:
    name: str
    exaggeration: float
    cfg_weight: float
    chunk_size: int
    decoder_steps: int
    temperature: float
    first_chunk_size: int | None = None

    def chunk_sizes(self) -> tuple[int, int]:
        """(first chunk, later chunks) in speech tokens."""
        return (self.first_chunk_size or self.chunk_size, self.chunk_size)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("balanced", 0.5, 0.5, 24, 5, 0.5),
        Preset("expressive", 0.7, 0.3, 25, 7, 0.55),
        Preset("fast", 0.4, 0.5, 18, 5, 0.4),
        Preset("clone_fidelity", 0.3, 0.65, 30, 7, 0.4),
        Preset("realtime", 0.4, 0.4, 10, 4, 0.45),
        Preset("adaptive", 0.5, 0.5, 24, 5, 0.5, first_chunk_size=12),
    )
}

DEFAULT_PRESET = "balanced"


def get_preset(name: str | None) -> Preset:
    """The preset called ``name`` (``balanced`` when None); unknown names list the valid ones."""
    if name is None:
        name = DEFAULT_PRESET
    preset = PRESETS.get(name) if isinstance(name, str) else None
    if preset is None:
        valid = ", ".join(PRESETS)
        raise InvalidRequest(f"Unknown preset: {name!s:.64}. Valid presets: {valid}")
    return preset
