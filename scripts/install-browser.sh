#!/usr/bin/env bash
# Install Debian's chromium for the browser test (tests/test_playground_browser.py), once.
#
#   scripts/install-browser.sh
#
# Idempotent: does nothing when /usr/bin/chromium exists. Playwright drives this browser via
# executable_path; no browser is ever downloaded by Playwright itself. Needs root (CI is).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
