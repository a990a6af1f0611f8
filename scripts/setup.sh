#!/usr/bin/env bash
# Installs everything dsv4 needs to build, test and serve, from Debian packages and npm.
# Safe to run repeatedly. Run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake pkg-config ccache git xz-utils libopenmpi-dev openmpi-bin
  nlohmann-json3-dev libpcre2-dev libcli11-dev libboost1.81-dev libcpp-httplib-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libnuma-dev
  clang libclang-rt-dev
)
# Node.js + npm for the client tests: Debian's packages, unless a node with npm is already there
# (some images ship nodejs from another repository whose package already contains npm, and
# Debian's npm package would then conflict with it).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# JavaScript client tests use the official SDKs (tests/clients/package.json).
if [ -f tests/clients/package.json ] && command -v npm >/dev/null; then
  (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
fi
# The coding-agent tests run the real CLIs (Codex, Claude Code, opencode), at the exact versions
# of tests/agents/package-lock.json (about 1.2 GB of native binaries for this platform). `npm ci`
# refuses that lock where the registry lacks opencode's binaries for other platforms (its
# optional dependencies, which the lock then cannot list); `npm install` keeps the lock's
# versions and skips those.
if [ -f tests/agents/package-lock.json ] && command -v npm >/dev/null; then
  (cd tests/agents && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
fi
echo "setup: done"
