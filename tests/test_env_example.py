""".env.example documents every Settings field, with its description and its default.

The file is parsed, not eyeballed: each field of ``app.config.Settings`` must appear once
as ``NAME=value`` (its default) or, when the default is unset, as ``# NAME=example``; the
comment block just above it must contain the field's description; and nothing else may
appear except the documented extras below (variables read by libraries or by the RunPod
start script, not by Settings). Adding a setting without documenting it fails here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.config import Settings

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"

# Variables .env.example may document that are not Settings fields.
EXTRAS = {
    "HF_HOME",  # huggingface_hub cache root: where from_pretrained puts Chatterbox weights
    "HF_HUB_OFFLINE",  # huggingface_hub: no network, weights must be cached
    "TQDM_DISABLE",  # tqdm: silence chatterbox's progress bars
    "PRELOAD_VOICES",  # deploy/runpod/start.sh
    "WARMUP_VOICE_ID",  # deploy/runpod/start.sh
    "WARMUP_PRESET",  # deploy/runpod/start.sh
    "STARTUP_TIMEOUT_S",  # deploy/runpod/start.sh
}

_VAR = re.compile(r"^(?P<commented>#\s?)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


@dataclass
class Entry:
    name: str
    value: str
    commented: bool
    line: int
    comment: list[str] = field(default_factory=list)


def _parse(text: str) -> list[Entry]:
    entries: list[Entry] = []
    block: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        m = _VAR.match(line)
        if m:
            entries.append(Entry(m["name"], m["value"], bool(m["commented"]), lineno, list(block)))
            block = []
        elif line.startswith("#"):
            block.append(line.lstrip("#").strip())
        else:  # a blank line ends a comment block
            block = []
    return entries


def _env_names() -> dict[str, str]:
    """Environment variable name (upper case) -> field name, as pydantic-settings reads them."""
    prefix = Settings.model_config.get("env_prefix", "") or ""
    names: dict[str, str] = {}
    for fname, info in Settings.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        env = alias or info.alias or f"{prefix}{fname}"
        names[env.upper()] = fname
    return names


def _norm(text: str) -> str:
    return " ".join(text.split())


ENTRIES = _parse(ENV_EXAMPLE.read_text(encoding="utf-8"))
ENV_NAMES = _env_names()


def test_every_setting_is_documented() -> None:
    documented = {e.name for e in ENTRIES}
    missing = sorted(set(ENV_NAMES) - documented)
    assert not missing, f"Settings fields missing from .env.example: {missing}"


def test_nothing_unknown_or_repeated() -> None:
    names = [e.name for e in ENTRIES]
    unknown = sorted(set(names) - set(ENV_NAMES) - EXTRAS)
    assert not unknown, f".env.example names no Settings field or documented extra: {unknown}"
    repeated = sorted({n for n in names if names.count(n) > 1})
    assert not repeated, f"named more than once in .env.example: {repeated}"


@pytest.mark.parametrize("env_name", sorted(ENV_NAMES))
def test_description_is_the_comment(env_name: str) -> None:
    entry = next((e for e in ENTRIES if e.name == env_name), None)
    if entry is None:
        pytest.fail(f"{env_name} missing from .env.example")
    description = Settings.model_fields[ENV_NAMES[env_name]].description
    assert description, f"Settings.{ENV_NAMES[env_name]} has no description"
    assert _norm(description) in _norm(" ".join(entry.comment)), (
        f".env.example line {entry.line}: the comment above {env_name} must contain its "
        f"description: {description!r}"
    )


@pytest.mark.parametrize("env_name", sorted(ENV_NAMES))
def test_unset_defaults_are_commented_out(env_name: str) -> None:
    entry = next((e for e in ENTRIES if e.name == env_name), None)
    if entry is None:
        pytest.fail(f"{env_name} missing from .env.example")
    default = Settings.model_fields[ENV_NAMES[env_name]].default
    if default is None:
        assert entry.commented, f"{env_name} is unset by default: comment it out (# {env_name}=)"
    else:
        assert not entry.commented, f"{env_name} has a default ({default!r}): show it active"


def test_active_values_are_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Loading .env.example as a dotenv file gives exactly the defaults."""
    for name in [*ENV_NAMES, *ENV_NAMES.values()]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)  # no developer .env in the way
    defaults = Settings(_env_file=None).model_dump()
    from_example = Settings(_env_file=ENV_EXAMPLE).model_dump()
    differing = {
        k: (from_example[k], defaults[k]) for k in defaults if from_example[k] != defaults[k]
    }
    assert not differing, f".env.example value != default (example, default): {differing}"


def test_the_documented_store_precedence_is_the_codes(tmp_path: Path) -> None:
    # .env.example once said VOICES_DIR wins while the code let the bucket win; the code is
    # right (a development setting must not shadow production's store) and the file says so.
    from app.voices.stores import build_store
    from app.voices.stores.public_url import PublicUrlStore

    text = " ".join(ENV_EXAMPLE.read_text(encoding="utf-8").split())
    order = [text.index(name, text.index("first match wins")) for name in
             ("R2_* S3 API", "CLOUDFLARE_R2_PUBLIC_URL", "VOICES_DIR")]
    assert order == sorted(order)
    both = Settings(_env_file=None, voices_dir=tmp_path,  # type: ignore[call-arg]
                    cloudflare_r2_public_url="https://pub.r2.dev")
    assert isinstance(build_store(both), PublicUrlStore)
