#!/usr/bin/env bash
# Installs one Debian package that the test suite drives as a real program:
#   chromium   /usr/bin/chromium    the Temporal Web browser test (test/temporal-web.test.ts, through playwright-core)
#   prometheus /usr/bin/prometheus  the cluster suite's metrics scrape (test/cluster/metrics.test.ts)
# Usage: install-debian-package.sh <package> <binary>. Run by `npm test` (tools/scripts/two-commands.js) when the
# binary is missing. Idempotent: does nothing when the binary is there. Needs root (or sudo) and apt. Services the
# package would start (Prometheus's) are kept from starting: the tests run their own instances.
set -euo pipefail

PACKAGE="$1"
BINARY="$2"

if [ -x "$BINARY" ]; then
  echo "+ $PACKAGE already installed: $BINARY"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: $BINARY is missing and this script is not root (and sudo is unavailable)." >&2
    echo "       install it with: apt-get install -y $PACKAGE" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: $BINARY is missing and apt-get is not available: install $PACKAGE yourself." >&2
  exit 1
fi

# invoke-rc.d asks policy-rc.d before starting a service; exit code 101 means "not now". Only ours is removed after.
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod +x "$POLICY"
  OWN_POLICY=1
fi
cleanup() { if [ -n "$OWN_POLICY" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "+ $PACKAGE missing: ${SUDO:+$SUDO }apt-get update"
$SUDO apt-get update -q
echo "+ ${SUDO:+$SUDO }apt-get install -y --no-install-recommends $PACKAGE"
$SUDO apt-get install -y -q --no-install-recommends "$PACKAGE"
echo "+ installed: $BINARY"
