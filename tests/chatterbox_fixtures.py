"""Fixtures for the Chatterbox tests: tiny random-weight checkpoints and loaded engines.

The checkpoints are built once per pytest run (under the session's base temp dir, with a
marker file, so every test module that imports these fixtures shares them) and loaded
through the library's own ``from_local``. Their vocoder is voiced (``tiny.py``): f0 in the
speech range, so seams in the sine source are visible. Engines are loaded once per test
module and freed after it (keeping them for the session would hold several gigabytes
through the rest of a full suite). Tests skip cleanly when the CPU chatterbox stack
(``scripts/install-chatterbox-cpu.sh``) is not installed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")

from app.config import Settings  # noqa: E402

_BUILD_LOCK = threading.Lock()
TURBO_EOS_AFTER = 48
STANDARD_EOS_AFTER = 30
MULTILINGUAL_EOS_AFTER = 30


def _require_stack() -> None:
    pytest.importorskip("chatterbox")
    pytest.importorskip("perth")
    import torch

    torch.set_num_threads(2)


def _tiny_dir(base: Path, family: str) -> Path:
    from app.engines.chatterbox.tiny import build_tiny_checkpoint

    out = base / f"tiny-{family}"
    done = out / ".complete"
    with _BUILD_LOCK:
        if not done.exists():
            if family == "turbo":
                build_tiny_checkpoint(family, out, eos_after=TURBO_EOS_AFTER)
            else:  # a 3 s prompt keeps the CFG flow cheap on CPU
                eos = MULTILINGUAL_EOS_AFTER if family == "multilingual" else STANDARD_EOS_AFTER
                build_tiny_checkpoint(family, out, eos_after=eos, clip_seconds=3.0)
            done.touch()
    return out


@pytest.fixture(scope="session")
def tiny_turbo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_stack()
    return _tiny_dir(tmp_path_factory.getbasetemp(), "turbo")


@pytest.fixture(scope="session")
def tiny_standard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_stack()
    return _tiny_dir(tmp_path_factory.getbasetemp(), "standard")


@pytest.fixture(scope="session")
def tiny_multilingual_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_stack()
    return _tiny_dir(tmp_path_factory.getbasetemp(), "multilingual")


def make_engine(family: str, ckpt: Path, **overrides: object):
    from app.engines.chatterbox import ChatterboxEngine

    # A fixed budget: measured at load, capacity would follow this machine's speed.
    overrides.setdefault("chatterbox_stream_budget", 8)
    settings = Settings(
        _env_file=None, chatterbox_model=family, chatterbox_ckpt_dir=ckpt,
        chatterbox_device="cpu", **overrides,
    )
    engine = ChatterboxEngine(settings)
    asyncio.run(engine.load())
    return engine


@pytest.fixture(scope="module")
def turbo_engine(tiny_turbo_dir: Path) -> Iterator[object]:
    engine = make_engine("turbo", tiny_turbo_dir, max_concurrent_streams=2)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def standard_engine(tiny_standard_dir: Path) -> Iterator[object]:
    engine = make_engine("standard", tiny_standard_dir)
    yield engine
    asyncio.run(engine.aclose())


@pytest.fixture(scope="module")
def multilingual_engine(tiny_multilingual_dir: Path) -> Iterator[object]:
    engine = make_engine("multilingual", tiny_multilingual_dir)
    yield engine
    asyncio.run(engine.aclose())
