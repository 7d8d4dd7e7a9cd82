#!/usr/bin/env bash
# Start the service on a pod: `python -m app` in the background, SIGTERM/SIGINT forwarded
# to it, and a warmup (POST /warmup, then /preload of PRELOAD_VOICES) once /health answers.
# The script exits with the server's exit status. It is the Docker image's CMD.
#
# Environment (beyond the app's own settings, see .env.example):
#   PYTHON              interpreter to run (default: python; e.g. .venv/bin/python locally)
#   WARMUP=0            skip the warmup
#   WARMUP_VOICE_ID, WARMUP_PRESET, PRELOAD_VOICES, STARTUP_TIMEOUT_S, WARMUP_AUTH_HEADER
#                       read by warmup.py (see its docstring)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"

log() { printf '[start] %s\n' "$*" >&2; }

# A writable directory for a cache, or a fallback with a warning. A RunPod network volume
# may be mounted root-owned; the image runs as uid 10001.
ensure_writable() {
  local var="$1" fallback="$2" dir="${!1:-}"
  [ -n "$dir" ] || return 0
  if mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; then
    return 0
  fi
  log "WARNING: $var=$dir is not writable by uid $(id -u); using $fallback instead" \
      "(make the volume writable, or bake the weights into the image)"
  mkdir -p "$fallback"
  export "$var=$fallback"
}
# The image's own HF cache (/opt/hf, where BAKE_WEIGHTS=1 puts the weights) is the better
# fallback when it exists: baked weights are then used instead of downloaded again.
hf_fallback="${HOME:-/tmp}/.cache/huggingface"
if [ -d /opt/hf ] && [ -w /opt/hf ]; then hf_fallback=/opt/hf; fi
ensure_writable HF_HOME "$hf_fallback"
ensure_writable VOICE_CACHE_DIR "/tmp/voice-cache"
export TQDM_DISABLE="${TQDM_DISABLE:-1}"

log "starting: $python -m app (TTS_ENGINE=${TTS_ENGINE:-auto}" \
    "CHATTERBOX_MODEL=${CHATTERBOX_MODEL:-turbo} HF_HOME=${HF_HOME:-unset})"
"$python" -m app &
server_pid=$!
warmup_pid=""

# shellcheck disable=SC2317  # called by the traps below, which shellcheck does not follow
forward() {
  log "received $1: stopping the server (pid $server_pid)"
  kill -s "$1" "$server_pid" 2>/dev/null || true
}
trap 'forward TERM' TERM
trap 'forward INT' INT

if [ "${WARMUP:-1}" != "0" ]; then
  "$python" "$here/warmup.py" &
  warmup_pid=$!
fi

# `wait` returns early (status > 128) when a trapped signal arrives; wait again until the
# server itself has exited, so its own exit status is the one returned.
status=0
while :; do
  if wait "$server_pid"; then status=0; else status=$?; fi
  kill -0 "$server_pid" 2>/dev/null || break
done

if [ -n "$warmup_pid" ]; then
  kill "$warmup_pid" 2>/dev/null || true
  wait "$warmup_pid" 2>/dev/null || true
fi
log "server exited with status $status"
exit "$status"
