#!/usr/bin/env bash
# Installs the Debian packages Goose needs to build and test: a C toolchain
# and the X11/GL headers for the Fyne desktop app, ALSA headers for audio
# capture, Xvfb/xauth/ImageMagick for running the real window headless, and
# the desktop-entry and AppStream validators for the release checks.
set -euo pipefail
pkgs=(gcc libc6-dev pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev
      libxinerama-dev libxi-dev libxxf86vm-dev libasound2-dev xvfb xauth imagemagick
      desktop-file-utils appstream)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null; then
  echo "Go 1.26 or later is required: https://go.dev/doc/install" >&2
  exit 1
fi
