#!/usr/bin/env bash
# Installs the system packages the device matrix and its tests need, if missing and if we are root.
# Debian (this project's machines) and Ubuntu (GitHub's runners) name two of them differently: the browser for the
# HTML check (Debian `chromium`; on Ubuntu it is a snap stub, so the preinstalled Chrome or `chromium-browser` is
# used, found by the test from $HARNESS_CHROMIUM or PATH) and nothing else so far.
# mksh + toybox make the adb test device run commands the way a phone's /system/bin/sh does.
set -euo pipefail
pkgs=(g++-aarch64-linux-gnu qemu-user openssh-server adb mksh toybox)
. /etc/os-release 2>/dev/null || ID=debian
if [ "${ID:-debian}" = ubuntu ]; then
  if ! command -v google-chrome >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    pkgs+=(chromium-browser)
  fi
else
  pkgs+=(chromium)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "note: missing packages ${missing[*]} (install them with apt-get as root); tests that need them will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
