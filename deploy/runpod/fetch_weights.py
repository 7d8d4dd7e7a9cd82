"""Download a Chatterbox family's weights into the Hugging Face cache (HF_HOME).

Used by the Dockerfile (``--build-arg BAKE_WEIGHTS=1``) and, on a pod, to fill a network
volume once before the first real start:

    HF_HOME=/runpod-volume/hf python deploy/runpod/fetch_weights.py turbo

It calls the library's own ``from_pretrained`` (the same download the service does when
CHATTERBOX_CKPT_DIR is unset), on the CPU, so it needs no GPU and checks that the files
load. Only the standard library and chatterbox-tts are imported. HF_TOKEN is passed on by
the library where it reads it; the Chatterbox repositories are public.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

FAMILIES = {
    "turbo": ("chatterbox.tts_turbo", "ChatterboxTurboTTS"),
    "standard": ("chatterbox.tts", "ChatterboxTTS"),
    "multilingual": ("chatterbox.mtl_tts", "ChatterboxMultilingualTTS"),
}


def main(argv: list[str]) -> int:
    family = argv[1] if len(argv) > 1 else os.environ.get("CHATTERBOX_MODEL", "turbo")
    if family not in FAMILIES:
        print(f"unknown Chatterbox family {family!r}; one of {sorted(FAMILIES)}", file=sys.stderr)
        return 2
    module, cls_name = FAMILIES[family]
    cls = getattr(importlib.import_module(module), cls_name)
    start = time.monotonic()
    cls.from_pretrained(device="cpu")
    where = os.environ.get("HF_HOME", "~/.cache/huggingface")
    print(f"chatterbox {family}: weights in {where} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
