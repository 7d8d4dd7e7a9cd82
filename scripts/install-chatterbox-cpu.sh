#!/usr/bin/env bash
# Install the CPU test stack for the Chatterbox engine into an existing virtual environment.
#
#   scripts/install-chatterbox-cpu.sh VENV_DIR
#
# Idempotent: a stamp file records the recipe; a second run with the same recipe is a no-op.
# The GPU image does NOT use this: it installs the `chatterbox` extra as chatterbox-tts
# declares it (CUDA torch/torchaudio 2.6.0). This is the CPU set that CI tests with
# (see CHATTERBOX_NOTES.md / README).
set -euo pipefail

VENV="${1:?usage: $0 VENV_DIR}"
PY="$VENV/bin/python"
test -x "$PY" || { echo "no python in $VENV" >&2; exit 1; }

# Bump RECIPE whenever a pin below changes, so the stamp re-runs the install.
RECIPE="cb-cpu-1"
STAMP="$VENV/.chatterbox-cpu-$RECIPE"
if [ -f "$STAMP" ]; then
    exit 0
fi

PIP=("$PY" -m pip install --quiet)

# chatterbox-tts itself goes in with --no-deps: as declared it pins torch==2.6.0 and
# torchaudio==2.6.0 (multi-GB CUDA builds) and gradio (a web UI we never use). Its real
# runtime needs are listed explicitly below, at versions that work on CPU.
"${PIP[@]}" --no-deps "chatterbox-tts==0.1.7"

# torchaudio --no-deps so pip does not drag a second (CUDA) torch in beside the CPU one.
# setuptools<81: perth imports pkg_resources, which setuptools 81 removed; without it
# perth's import fails silently, its watermarker class becomes None and the chatterbox
# model constructors raise TypeError.
"${PIP[@]}" "torch==2.13.0" "setuptools<81"
"${PIP[@]}" --no-deps "torchaudio==2.11.0"
"${PIP[@]}" \
    "numpy<2" \
    "s3tokenizer==0.3.0" \
    "resemble-perth==1.0.1" \
    "librosa==0.11.0" \
    "transformers==5.2.0" \
    "diffusers==0.29.0" \
    "conformer==0.3.2" \
    "safetensors==0.5.3" \
    "spacy-pkuseg" \
    "pykakasi==2.3.0" \
    "pyloudnorm" \
    "omegaconf" \
    "onnx" \
    "einops" \
    "tqdm"

# The torchaudio wheel on PyPI links its compiled extension against CUDA libraries, which
# fail to load next to a CPU torch. torchaudio falls back to pure Python when its
# torchaudio/lib/*.so files are absent, and everything chatterbox and perth use
# (compliance.kaldi.fbank, functional.resample, spectrogram transforms) works that way.
TA_LIB="$("$PY" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("torchaudio")
print(pathlib.Path(spec.origin).parent / "lib" if spec and spec.origin else "")
PY
)"
if [ -n "$TA_LIB" ] && [ -d "$TA_LIB" ]; then
    rm -f "$TA_LIB"/*.so
fi

# Smoke check: the model classes import and perth's watermarker is real.
"$PY" - <<'PY'
import perth
from chatterbox.tts_turbo import ChatterboxTurboTTS  # noqa: F401
from chatterbox.tts import ChatterboxTTS  # noqa: F401
assert perth.PerthImplicitWatermarker is not None, "perth failed to import (setuptools>=81?)"
PY

touch "$STAMP"
