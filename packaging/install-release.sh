#!/usr/bin/env bash
# Installs an unpacked Goose release so that it appears in the desktop's
# launcher: the gooseapp binary, the desktop entry, the icons, the
# AppStream metainfo and the licences, under PREFIX (default: ~/.local,
# or /usr/local when run as root). uninstall.sh removes them again.
#
#   ./install.sh [--prefix DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix="$HOME/.local"
[ "$(id -u)" -eq 0 ] && prefix=/usr/local
while (($#)); do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (want --prefix DIR)" >&2; exit 2 ;;
  esac
done
id=io.github.goose_rwkv.Goose
manifest="$prefix/lib/goose/installed-files"
mkdir -p "$prefix/bin" "$prefix/lib/goose"
: >"$manifest.new"

put() { # put SRC DEST: copy one file, remembering it for uninstall.sh
  mkdir -p "$(dirname "$2")"
  install -m "$3" "$1" "$2"
  echo "$2" >>"$manifest.new"
}

put "$here/bin/gooseapp" "$prefix/bin/gooseapp" 755
# The launcher may not have $prefix/bin on its PATH: name the binary in full.
sed "s|^Exec=gooseapp|Exec=$prefix/bin/gooseapp|" "$here/share/applications/$id.desktop" >"$here/.desktop.tmp"
put "$here/.desktop.tmp" "$prefix/share/applications/$id.desktop" 644
rm -f "$here/.desktop.tmp"
put "$here/share/metainfo/$id.metainfo.xml" "$prefix/share/metainfo/$id.metainfo.xml" 644
(cd "$here/share" && find icons doc -type f) | while read -r f; do
  put "$here/share/$f" "$prefix/share/$f" 644
done
cp "$here/uninstall.sh" "$prefix/lib/goose/uninstall.sh"
chmod 755 "$prefix/lib/goose/uninstall.sh"
echo "$prefix/lib/goose/uninstall.sh" >>"$manifest.new"
mv "$manifest.new" "$manifest"

# Let the desktop notice (each tool is optional).
command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null && [ -f "$prefix/share/icons/hicolor/index.theme" ] &&
  gtk-update-icon-cache -q -t "$prefix/share/icons/hicolor" 2>/dev/null || true

echo "installed Goose $("$prefix/bin/gooseapp" --version | head -1 | cut -d' ' -f2) in $prefix"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "note: $prefix/bin is not on your PATH; the desktop launcher finds Goose anyway" ;; esac
echo "uninstall with: $prefix/lib/goose/uninstall.sh"
