#!/usr/bin/env bash
# Builds a Goose release from this checkout:
#
#   packaging/build.sh [--deb] [--out DIR] [--dev]
#
# DIR (default dist/) gets goose-VERSION-linux-ARCH/ (the release tree),
# goose-VERSION-linux-ARCH.tar.gz (that tree packed) and, with --deb,
# goose_VERSION_ARCH.deb (built with dpkg-deb). VERSION is packaging/VERSION;
# `gooseapp --version` reports it and the commit. The tree holds:
#
#   install.sh, uninstall.sh        put Goose into / take it out of the launcher
#   bin/gooseapp                    the app and the terminal commands
#   share/applications/*.desktop    the desktop entry
#   share/icons/hicolor/...         the icon, SVG and PNG 16-512
#   share/metainfo/*.metainfo.xml   AppStream metadata (software centres)
#   share/doc/goose/                README and the licences of all that ships
#
# --dev builds without -trimpath, reusing what `go test ./...` compiled (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
deb=0
out=dist
trim=-trimpath
while (($#)); do
  case $1 in
    --deb) deb=1; shift ;;
    --out) out=$2; shift 2 ;;
    --dev) trim=""; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
version=$(tr -d ' \n' <packaging/VERSION)
arch=$(go env GOARCH)
id=io.github.goose_rwkv.Goose
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit+=" (modified)"
fi
if ! grep -q "<release version=\"$version\"" packaging/$id.metainfo.xml; then
  echo "build.sh: packaging/$id.metainfo.xml has no <release version=\"$version\"> (packaging/VERSION)" >&2
  exit 1
fi

name=goose-$version-linux-$arch
stage=$out/$name
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/share/applications" "$stage/share/metainfo" "$stage/share/icons" "$stage/share/doc/goose"
go build $trim -ldflags "-s -w -X main.version=$version -X 'main.commit=$commit'" -o "$stage/bin/gooseapp" ./cmd/gooseapp
got=$("$stage/bin/gooseapp" --version | sed -n 1p)
if [ "$got" != "gooseapp $version" ]; then
  echo "build.sh: the binary says \"$got\", want \"gooseapp $version\"" >&2
  exit 1
fi
if ! "$stage/bin/gooseapp" --version | grep "desktop app (Fyne)" >/dev/null; then
  echo "build.sh: the binary lacks the desktop app (cgo and the X11/GL headers are needed: packaging/deps.sh)" >&2
  exit 1
fi
cp packaging/$id.desktop "$stage/share/applications/"
cp packaging/$id.metainfo.xml "$stage/share/metainfo/"
go run ./packaging/icon -out "$stage/share/icons" -name $id
cp README.md "$stage/share/doc/goose/"
bash packaging/licenses.sh "$stage/bin/gooseapp" "$stage/share/doc/goose" >/dev/null
install -m 755 packaging/install-release.sh "$stage/install.sh"
install -m 755 packaging/uninstall.sh "$stage/uninstall.sh"
tar -C "$out" --owner=0 --group=0 -czf "$out/$name.tar.gz" "$name"
echo "built $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1))"

if ((deb)); then
  debarch=$(dpkg --print-architecture 2>/dev/null || echo "$arch")
  root=$out/deb-root
  rm -rf "$root"
  mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/share"
  install -m 755 "$stage/bin/gooseapp" "$root/usr/bin/gooseapp"
  cp -r "$stage/share/applications" "$stage/share/metainfo" "$stage/share/icons" "$stage/share/doc" "$root/usr/share/"
  # Debian keeps the licences in /usr/share/doc/PACKAGE/copyright.
  {
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: Goose"
    echo "Source: https://github.com/goose-rwkv/goose"
    echo "Comment: The licences of Goose and of every Go module linked into gooseapp are in"
    echo " /usr/share/doc/goose/licenses/ (index: licenses/README.txt)."
  } >"$root/usr/share/doc/goose/copyright"
  size=$(du -sk "$root/usr" | cut -f1)
  cat >"$root/DEBIAN/control" <<CONTROL
Package: goose
Version: $version
Architecture: $debarch
Maintainer: Goose developers <goose-rwkv@users.noreply.github.com>
Installed-Size: $size
Depends: libc6, libgl1, libx11-6, libxcursor1, libxrandr2, libxinerama1, libxi6, libxxf86vm1
Recommends: libasound2t64 | libasound2, xclip | wl-clipboard
Section: utils
Priority: optional
Homepage: https://github.com/goose-rwkv/goose
Description: offline desktop app and engine for RWKV-7 language models
 Goose runs RWKV-7 "Goose" language models on this computer, with no network:
 chat with streaming replies, branches, search and export; questions about
 images with VisualRWKV-7 models; audio tags with A-RWKV models; terminal
 commands and an OpenAI-compatible local server. CPU and NVIDIA GPUs.
CONTROL
  find "$root" -type d -exec chmod 755 {} +
  dpkg-deb --root-owner-group --build "$root" "$out/goose_${version}_$debarch.deb" >/dev/null
  rm -rf "$root"
  echo "built $out/goose_${version}_$debarch.deb ($(du -h "$out/goose_${version}_$debarch.deb" | cut -f1))"
fi
