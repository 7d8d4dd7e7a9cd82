"""While a joining stream's prefill runs on a CPU, the model's other work gives way to it.

On a CPU the joiner's prefill, the token loop's step in flight and a chunk decode (S3Gen,
then the watermark) share the same cores and the GIL; a lower nice value for the decode
worker does not stop that (its torch threads and the GIL still compete). Measured with
per-thread scheduler statistics on the 2-core test machine, tiny Turbo, 7 streams running:
the prefill spent as long waiting for a core as running (13 ms on a core, 15 ms runnable),
while the step in flight and the decode's torch threads ran. A ``PrefillGate`` puts a
forward pre-hook on every submodule of the modules it holds (the T3 backbone, S3Gen, the
watermark network): while a prefill runs, any other thread entering one of them waits for
the prefill to end, so a step in flight or a decode pauses at its next module boundary and
resumes right after. Only the pause point is added; nothing in their state changes.

Only for CPUs: on a GPU the kernels of the three overlap and a pause would only idle it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PAUSE_LIMIT_S = 2.0  # a pause never outlasts this, whatever happens to the prefill


class PrefillGate:
    """Forward pre-hooks that hold other threads while ``prefill()`` is entered."""

    def __init__(self) -> None:
        self._owner: int | None = None  # the prefilling thread
        self._idle = threading.Event()
        self._idle.set()
        self._handles: list[Any] = []
        self.pauses = 0  # times a thread waited at a module boundary (diagnostics)
        self.waiting: set[str] = set()  # names of the threads waiting now (tests)

    def hold(self, module: Any, depth: int | None = None) -> None:
        """``module`` and its submodules (down to ``depth`` levels; all when None) pause
        for a prefill on any other thread. A hooked module call costs about 4 us more
        (measured here), so the token loop's backbone is held down to its blocks' halves
        only (attention, MLP), not to every linear layer."""
        for name, sub in module.named_modules():
            if depth is None or (name.count(".") + 1 if name else 0) <= depth:
                self._handles.append(sub.register_forward_pre_hook(self._wait))

    def release(self) -> None:
        """Remove every hook (the scheduler closed; the model may outlive it)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @contextmanager
    def prefill(self) -> Iterator[None]:
        """While inside, other threads wait at their next module boundary."""
        self._idle.clear()
        self._owner = threading.get_ident()
        try:
            yield
        finally:
            self._owner = None
            self._idle.set()

    def _wait(self, module: Any, args: Any) -> None:
        owner = self._owner
        if owner is not None and owner != threading.get_ident():
            name = threading.current_thread().name
            self.pauses += 1
            self.waiting.add(name)
            try:
                self._idle.wait(PAUSE_LIMIT_S)
            finally:
                self.waiting.discard(name)
