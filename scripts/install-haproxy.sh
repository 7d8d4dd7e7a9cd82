#!/usr/bin/env bash
# Install Debian's HAProxy for the multi-replica test (tests/test_replicas_haproxy.py), once.
#
#   scripts/install-haproxy.sh
#
# Idempotent: does nothing when haproxy is already on PATH. The test runs it as a plain
# process (never as the system service). Needs root (CI is) or sudo.
set -euo pipefail

if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends haproxy
