#!/usr/bin/env bash
# Build the virtual environment in which the pipecat compatibility tests run pipecat.
#
#   scripts/install-pipecat-venv.sh VENV_DIR      (make test: .venv-pipecat beside .venv)
#
# Why a second environment: every pipecat-ai release pins protobuf<7, soxr~=1.0.0 and
# soundfile~=0.13.1; installed beside the service it would downgrade what the service and the
# Chatterbox stack are tested with. tests/test_client_compat_pipecat.py runs the pipecat
# clients as subprocesses with this environment's python against a live server of the main
# environment, which is also how a real agent talks to the service: over the network only.
# Idempotent: a stamp named after the requirements' hash makes a second run a no-op.
set -euo pipefail

VENV="${1:?usage: $0 VENV_DIR}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
REQS="$HERE/tests/client_compat/pipecat-requirements.txt"
PYTHON="${PYTHON:-python3.11}"

RECIPE="$(sha256sum "$REQS" | cut -c1-12)"
STAMP="$VENV/.pipecat-$RECIPE"
if [ -f "$STAMP" ]; then
    exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r "$REQS"
touch "$STAMP"
