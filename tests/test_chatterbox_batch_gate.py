"""The prefill gate alone, on a toy module: other threads pause at a module boundary while a
prefill runs, the prefilling thread itself never does, and released hooks are gone."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from app.engines.chatterbox.batch_gate import PrefillGate  # noqa: E402


def toy() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_another_thread_waits_at_the_next_module_until_the_prefill_ends() -> None:
    gate, model = PrefillGate(), toy()
    gate.hold(model)
    order: list[str] = []
    worker = threading.Thread(target=lambda: (model(torch.ones(1, 4)), order.append("other")),
                              name="decode-like")
    with gate.prefill():
        model(torch.ones(1, 4))  # the prefilling thread passes its own gate
        worker.start()
        for _ in range(3000):
            if "decode-like" in gate.waiting:
                break
            threading.Event().wait(0.01)
        assert gate.waiting == {"decode-like"} and not order
        order.append("prefill")
    worker.join(timeout=30)
    assert order == ["prefill", "other"] and gate.waiting == set() and gate.pauses >= 1


def test_nothing_waits_without_a_prefill_or_after_release() -> None:
    gate, model = PrefillGate(), toy()
    gate.hold(model)
    done = threading.Event()
    threading.Thread(target=lambda: (model(torch.ones(1, 4)), done.set())).start()
    assert done.wait(timeout=30) and gate.pauses == 0
    gate.release()
    done.clear()
    with gate.prefill():
        threading.Thread(target=lambda: (model(torch.ones(1, 4)), done.set())).start()
        assert done.wait(timeout=30)  # no hooks left: it ran during the prefill
    assert gate.pauses == 0
