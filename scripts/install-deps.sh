#!/usr/bin/env bash
# Installs what rotograph needs at run time (ffmpeg) when it is missing. Debian/Ubuntu: apt-get,
# retrying while another process holds the apt lock. Elsewhere it says what to install.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ffmpeg is missing: install it with your package manager (macOS: brew install ffmpeg)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
for attempt in $(seq 1 30); do
  if $SUDO apt-get -o DPkg::Lock::Timeout=120 update -qq &&
     $SUDO apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends ffmpeg; then
    break
  fi
  echo "apt-get failed (lock held by another process?), retrying in 10 s ($attempt/30)" >&2
  sleep 10
done
command -v ffmpeg >/dev/null 2>&1 || { echo "could not install ffmpeg" >&2; exit 1; }
