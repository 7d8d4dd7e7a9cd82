# syntax=docker/dockerfile:1
#
# GPU image: the service with the Chatterbox engine (deploy/runpod/README.md).
#
#   docker build -t telephony-tts .                                  # weights at first start
#   docker build -t telephony-tts --build-arg BAKE_WEIGHTS=1 .       # Turbo weights inside
#   docker build -t telephony-tts --build-arg BAKE_WEIGHTS=1 --build-arg CHATTERBOX_MODEL=standard .
#   docker run --gpus all -p 8000:8000 telephony-tts
#
# Base image: plain Python 3.11. The CUDA runtime comes with torch: chatterbox-tts 0.1.7
# pins torch==2.6.0, whose PyPI wheel depends on the CUDA 12.4 runtime, cuBLAS, cuDNN 9.1
# etc. as nvidia-*-cu12 wheels, so an nvidia/cuda base would ship those libraries twice
# (several GB). The GPU driver (libcuda) is mounted into the container at run time by the
# NVIDIA container toolkit (`docker run --gpus`, RunPod, Kubernetes device plugin); the
# NVIDIA_* variables below ask it for the compute libraries. Host driver: 525+ (CUDA 12
# minor-version compatibility), 550+ to match CUDA 12.4.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- deps: the virtualenv with every dependency, installed as the extra declares it ----
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# Only the project metadata and an empty package, so that this multi-GB layer is rebuilt
# when dependencies change, not on every code change. The stub project is removed again;
# the real code is installed in the runtime stage.
COPY pyproject.toml README.md ./
# chatterbox-tts leaves some runtime dependencies unpinned; the tested versions are held here.
COPY deploy/constraints-chatterbox.txt ./
# `.[chatterbox]` as declared: chatterbox-tts 0.1.7 with its pins (torch and torchaudio
# 2.6.0 CUDA builds, numpy<2). setuptools<81: resemble-perth (the watermarker) imports
# pkg_resources, which setuptools 81 removed; without it the model constructor fails.
# DL3013 (pin versions): the versions are pinned where they are declared, in pyproject.toml's
# extra and in chatterbox-tts's own requirements; repeating them here would let them drift.
# hadolint ignore=DL3013
RUN mkdir app && touch app/__init__.py \
    && pip install -c constraints-chatterbox.txt ".[chatterbox]" "setuptools>=70.1,<81" \
    && pip uninstall --yes telephony-tts \
    && python -c "import torch, torchaudio, chatterbox, perth; assert perth.PerthImplicitWatermarker is not None; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# ---- weights: optionally download the model into HF_HOME at build time ----
FROM deps AS weights
ARG BAKE_WEIGHTS=0
ARG CHATTERBOX_MODEL=turbo
ENV HF_HOME=/opt/hf \
    TQDM_DISABLE=1
COPY deploy/runpod/fetch_weights.py /src/fetch_weights.py
RUN mkdir -p /opt/hf \
    && if [ "$BAKE_WEIGHTS" = "1" ]; then python /src/fetch_weights.py "$CHATTERBOX_MODEL"; fi

# ---- runtime ----
FROM ${PYTHON_IMAGE} AS runtime
ARG CHATTERBOX_MODEL=turbo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    HOST=0.0.0.0 \
    PORT=8000 \
    TTS_ENGINE=chatterbox \
    CHATTERBOX_MODEL=${CHATTERBOX_MODEL} \
    HF_HOME=/opt/hf \
    VOICE_CACHE_DIR=/data/voices \
    TQDM_DISABLE=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache

# Non-root user; a fixed numeric uid so `runAsNonRoot` checks and volume permissions can
# name it. It owns only what the service writes: the HF cache and the voice clip cache.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/app app \
    && mkdir -p /data/voices \
    && chown app:app /data/voices

COPY --from=deps /opt/venv /opt/venv
COPY --from=weights --chown=app:app /opt/hf /opt/hf

# The project itself, on top of the dependency layers (small, rebuilt on code changes).
COPY pyproject.toml README.md /tmp/src/
COPY app /tmp/src/app
RUN pip install --no-deps --no-build-isolation /tmp/src \
    && rm -rf /tmp/src \
    && python -c "import app.engines.chatterbox"

WORKDIR /srv
COPY deploy/runpod/start.sh deploy/runpod/warmup.py deploy/runpod/fetch_weights.py /srv/deploy/runpod/
# The GPU benchmarks (deploy/runpod/README.md runs them in the container, from /srv).
COPY benchmarks/*.py /srv/benchmarks/

USER 10001:10001
EXPOSE 8000

# /health is liveness (an exception in the probe exits 1: unhealthy); the start period
# covers a first start that downloads the weights.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=4)"]

# start.sh runs `python -m app`, forwards SIGTERM/SIGINT to it, and warms the engine (and
# PRELOAD_VOICES) once /health answers. `docker run IMAGE python -m app` skips the warmup.
CMD ["bash", "/srv/deploy/runpod/start.sh"]
