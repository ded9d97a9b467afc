#!/usr/bin/env bash
# Installs Goose from this checkout: the build dependencies (packaging/deps.sh),
# then a release built by packaging/build.sh, installed by its install.sh so
# that Goose appears in the desktop's launcher: gooseapp in ~/.local/bin (or
# /usr/local/bin as root), the desktop entry, icons and AppStream metadata in
# the XDG places. ~/.local/lib/goose/uninstall.sh (or /usr/local/lib/...)
# removes it again.
#
#   packaging/install.sh [--prefix DIR] [--run]
#
# --run opens the installed app at the end (by its full path: a new
# ~/.local/bin joins PATH only at the next login).
set -euo pipefail
cd "$(dirname "$0")/.."
run=0
prefix="$HOME/.local"
[ "$(id -u)" -eq 0 ] && prefix=/usr/local
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --run) run=1; shift ;;
    --prefix) prefix=$2; args+=("$1" "$2"); shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; args+=("$1"); shift ;;
    *) args+=("$1"); shift ;;
  esac
done
bash packaging/deps.sh
go mod download
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash packaging/build.sh --out "$out" >/dev/null
"$out"/goose-*/install.sh ${args[@]+"${args[@]}"}
if [ "$run" = 1 ]; then
  rm -rf "$out"
  trap - EXIT
  exec "$prefix/bin/gooseapp"
fi
