#!/usr/bin/env bash
# Installs Goose from this checkout: the build dependencies (packaging/deps.sh),
# then a release built by packaging/build.sh, installed by its install.sh so
# that Goose appears in the desktop's launcher: gooseapp in ~/.local/bin (or
# /usr/local/bin as root), the desktop entry, icons and AppStream metadata in
# the XDG places. ~/.local/lib/goose/uninstall.sh (or /usr/local/lib/...)
# removes it again.
#
#   packaging/install.sh [--prefix DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/deps.sh
go mod download
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash packaging/build.sh --out "$out" >/dev/null
"$out"/goose-*/install.sh "$@"
