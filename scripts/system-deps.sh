#!/usr/bin/env bash
# Installs the Debian packages the device matrix and its tests need, if missing and if we are root.
set -euo pipefail
pkgs=(g++-aarch64-linux-gnu qemu-user openssh-server chromium adb)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "note: missing Debian packages ${missing[*]} (install them with apt-get as root); tests that need them will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
