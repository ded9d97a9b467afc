#!/usr/bin/env bash
# Installs Goose's build dependencies, builds gooseapp and installs it into
# ~/.local/bin (or /usr/local/bin as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/deps.sh
go mod download
dest="$HOME/.local/bin"
[ "$(id -u)" -eq 0 ] && dest=/usr/local/bin
mkdir -p "$dest"
go build -trimpath -o "$dest/gooseapp" ./cmd/gooseapp
echo "installed $dest/gooseapp"
