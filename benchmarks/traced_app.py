"""``python -m app`` with tracemalloc on, for the soak's ``--tracemalloc`` runs.

SIGUSR1 writes a snapshot to ``$TRACEMALLOC_DIR/snapshot-<n>.pickle``; the soak takes one
after the warm-up and one at the end and names the allocation sites that grew. Kept out of
``app`` because tracing slows every allocation and is for diagnosis only.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    out = Path(os.environ.get("TRACEMALLOC_DIR", "."))
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(int(os.environ.get("TRACEMALLOC_FRAMES", "6")))
    count = 0

    def dump(sig: int, frame: FrameType | None) -> None:
        nonlocal count
        snapshot = tracemalloc.take_snapshot()
        path = out / f"snapshot-{count}.pickle"
        snapshot.dump(str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").rename(path)  # the soak waits for the final name
        count += 1

    signal.signal(signal.SIGUSR1, dump)
    from app.__main__ import main as app_main

    app_main()


if __name__ == "__main__":
    main()
