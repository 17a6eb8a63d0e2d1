#!/usr/bin/env bash
# Debian's Chromium for the Temporal Web browser test
# (test/temporal-web.test.ts drives it with playwright-core; Playwright's own browser download is not used).
# Run by `npm test` (tools/scripts/two-commands.js) when Chromium is missing. Idempotent: does nothing when
# /usr/bin/chromium is already there. Needs root (or sudo) and Debian/Ubuntu apt.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "+ chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: /usr/bin/chromium is missing and this script is not root (and sudo is unavailable)." >&2
    echo "       install it with: apt-get install -y chromium" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: /usr/bin/chromium is missing and apt-get is not available: install Chromium yourself" >&2
  echo "       (or set BATCHKEEPER_CHROMIUM_PATH to a Chromium binary)." >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "+ chromium missing: ${SUDO:+$SUDO }apt-get update"
$SUDO apt-get update -q
echo "+ ${SUDO:+$SUDO }apt-get install -y --no-install-recommends chromium"
$SUDO apt-get install -y -q --no-install-recommends chromium
echo "+ installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
