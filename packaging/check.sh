#!/usr/bin/env bash
# Checks a release built by build.sh (CI runs it): the desktop entry and
# AppStream metadata validate, install.sh puts Goose into a launcher's
# places and uninstall.sh takes it all out again, `gooseapp --version`
# matches packaging/VERSION, the licences are there, and the .deb (when
# built) holds the same.
#
#   packaging/check.sh [DIR]      (DIR: build.sh's --out, default dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
version=$(tr -d ' \n' <packaging/VERSION)
id=io.github.goose_rwkv.Goose
tree=$(ls -d "$out"/goose-"$version"-linux-* | grep -v '\.tar\.gz$' | sed -n 1p)
fail() { echo "check.sh: $*" >&2; exit 1; }
[ -d "$tree" ] || fail "no release tree for $version in $out (run packaging/build.sh)"

command -v desktop-file-validate >/dev/null || fail "desktop-file-validate is missing (apt install desktop-file-utils)"
desktop-file-validate "$tree/share/applications/$id.desktop"
if command -v appstreamcli >/dev/null; then
  appstreamcli validate --no-net --explain "$tree/share/metainfo/$id.metainfo.xml" >/dev/null ||
    { appstreamcli validate --no-net "$tree/share/metainfo/$id.metainfo.xml"; fail "AppStream metainfo does not validate"; }
else
  echo "check.sh: appstreamcli not installed; AppStream metainfo not validated"
fi
[ "$("$tree/bin/gooseapp" --version | sed -n 1p)" = "gooseapp $version" ] || fail "gooseapp --version does not say $version"
for n in 16 24 32 48 64 128 256 512; do
  [ -s "$tree/share/icons/hicolor/${n}x$n/apps/$id.png" ] || fail "no ${n}px icon"
done
[ -s "$tree/share/icons/hicolor/scalable/apps/$id.svg" ] || fail "no SVG icon"
grep -q "fyne.io/fyne/v2" "$tree/share/doc/goose/licenses/README.txt" || fail "licences not collected"
[ -s "$tree/share/doc/goose/licenses/go/LICENSE" ] || fail "no Go licence"

# Install into a scratch prefix, as a user would into ~/.local.
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
"$tree/install.sh" --prefix "$prefix" >/dev/null
desktop="$prefix/share/applications/$id.desktop"
[ -f "$desktop" ] || fail "install.sh did not install the desktop entry"
desktop-file-validate "$desktop"
grep -qx "Exec=$prefix/bin/gooseapp" "$desktop" || fail "installed desktop entry: $(grep ^Exec= "$desktop")"
[ -x "$prefix/bin/gooseapp" ] || fail "install.sh did not install gooseapp"
[ "$("$prefix/bin/gooseapp" --version | sed -n 1p)" = "gooseapp $version" ] || fail "installed gooseapp --version"
[ -s "$prefix/share/icons/hicolor/256x256/apps/$id.png" ] || fail "install.sh did not install the icons"
[ -s "$prefix/share/metainfo/$id.metainfo.xml" ] || fail "install.sh did not install the metainfo"
"$prefix/lib/goose/uninstall.sh" >/dev/null
left=$(find "$prefix" -type f -not -name mimeinfo.cache -not -name icon-theme.cache | sed -n 1,5p)
[ -z "$left" ] || fail "uninstall.sh left: $left"

deb=$(ls "$out"/goose_"$version"_*.deb 2>/dev/null | sed -n 1p || true)
if [ -n "$deb" ]; then
  [ "$(dpkg-deb --field "$deb" Version)" = "$version" ] || fail "$deb: Version is not $version"
  x=$(mktemp -d)
  dpkg-deb --extract "$deb" "$x"
  desktop-file-validate "$x/usr/share/applications/$id.desktop"
  [ "$("$x/usr/bin/gooseapp" --version | sed -n 1p)" = "gooseapp $version" ] || fail "$deb: gooseapp --version"
  [ -s "$x/usr/share/doc/goose/copyright" ] && [ -s "$x/usr/share/icons/hicolor/48x48/apps/$id.png" ] || fail "$deb: files missing"
  rm -rf "$x"
fi
echo "check.sh: release $version OK ($tree${deb:+, $deb})"
