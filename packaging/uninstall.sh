#!/usr/bin/env bash
# Removes what install.sh installed (the list is in
# PREFIX/lib/goose/installed-files), leaving your chats, settings and
# downloaded models in place.
#
#   uninstall.sh [--prefix DIR]
set -euo pipefail
prefix=""
case "${1:-}" in
  --prefix) prefix=$2 ;;
  --prefix=*) prefix=${1#--prefix=} ;;
  -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
  "") ;;
  *) echo "uninstall.sh: unknown argument $1 (want --prefix DIR)" >&2; exit 2 ;;
esac
if [ -z "$prefix" ]; then
  # Installed copy: PREFIX/lib/goose/uninstall.sh. Else the default prefix.
  self=$(cd "$(dirname "$0")" && pwd)
  if [ -f "$self/installed-files" ]; then
    prefix=$(dirname "$(dirname "$self")")
  else
    prefix="$HOME/.local"
    [ "$(id -u)" -eq 0 ] && prefix=/usr/local
  fi
fi
manifest="$prefix/lib/goose/installed-files"
if [ ! -f "$manifest" ]; then
  echo "uninstall.sh: Goose is not installed in $prefix (no $manifest)" >&2
  exit 1
fi
while read -r f; do
  case $f in "$prefix"/*) rm -f "$f" ;; esac
done <"$manifest"
rm -f "$manifest"
# Goose's own folders, now empty (the shared ones like share/applications stay).
find "$prefix/share/doc/goose" -depth -type d -empty -delete 2>/dev/null || true
rmdir "$prefix/lib/goose" 2>/dev/null || true
command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" 2>/dev/null || true
echo "removed Goose from $prefix (your chats, settings and models stay where they are)"
