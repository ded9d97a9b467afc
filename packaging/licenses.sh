#!/usr/bin/env bash
# Collects the licences and notices of everything a gooseapp binary ships:
# Goose's own files, the World vocabulary and AudioSet notices, the Go
# standard library, and every Go module linked into the binary (read with
# `go version -m`), copied from the module cache. A module without a
# licence file fails the build.
#
#   packaging/licenses.sh BINARY OUTDIR
#
# writes OUTDIR/licenses/<module path>/<licence files> and OUTDIR/licenses/README.txt.
set -euo pipefail
bin=$1
out=$2/licenses
cd "$(dirname "$0")/.."
rm -rf "$out"
mkdir -p "$out"
modcache=$(go env GOMODCACHE)
index="$out/README.txt"
{
  echo "Licences of what this Goose release contains."
  echo
  echo "Goose itself: see goose/ (its licence, if the repository has one, and the notices"
  echo "of the data files embedded in the program)."
  echo "The Go standard library and runtime: go/LICENSE."
  echo "Go modules linked into gooseapp (module, version, files):"
} >"$index"

mkdir -p "$out/goose"
for f in LICENSE LICENSE.md COPYING NOTICE NOTICE.md; do
  [ -f "$f" ] && cp "$f" "$out/goose/"
done
cp assets/NOTICE.md "$out/goose/World-vocabulary-NOTICE.md"
cp assets/audioset/NOTICE.md "$out/goose/AudioSet-labels-NOTICE.md"
mkdir -p "$out/go"
cp "$(go env GOROOT)/LICENSE" "$out/go/LICENSE"

# Module cache paths spell capitals as "!" + lower case.
escape() { sed -E 's/([A-Z])/!\L\1/g' <<<"$1"; }

missing=()
# "dep PATH VERSION SUM" lines, each possibly followed by "=> PATH VERSION SUM".
while read -r kind path version _; do
  if [ "$kind" = "=>" ]; then
    last_dir="$modcache/$(escape "$path")@$version"
    [ -d "$path" ] && last_dir="$path" # a replacement by a local directory
    dirs[${#dirs[@]}-1]="$last_dir"
    continue
  fi
  [ "$kind" = "dep" ] || continue
  mods+=("$path $version")
  dirs+=("$modcache/$(escape "$path")@$version")
done < <(go version -m "$bin" | awk '$1=="dep" || $1=="=>" {print $1, $2, $3, $4}')

for i in "${!mods[@]}"; do
  read -r path version <<<"${mods[$i]}"
  dir=${dirs[$i]}
  dest="$out/$path"
  mkdir -p "$dest"
  found=()
  # Licence files at the module root, and those of C code vendored in it
  # (GLFW in go-gl/glfw, miniaudio in malgo), but not of test data.
  while IFS= read -r f; do
    rel=${f#"$dir"/}
    mkdir -p "$dest/$(dirname "$rel")"
    cp "$f" "$dest/$rel"
    found+=("$rel")
  done < <(find "$dir" -type f \( -iname 'LICEN[CS]E*' -o -iname 'COPYING*' -o -iname 'NOTICE*' -o -iname 'PATENTS*' -o -iname 'UNLICENSE*' \) \
             -not -path '*/testdata/*' -not -path '*/_examples/*' -not -path '*/example*/*' | sort)
  if ((${#found[@]} == 0)); then
    missing+=("$path@$version")
  fi
  echo "  $path $version: ${found[*]:-(none)}" >>"$index"
done

if ((${#missing[@]})); then
  echo "licenses.sh: no licence file found for: ${missing[*]}" >&2
  exit 1
fi
echo "licenses.sh: $((${#mods[@]})) modules, licences in $out"
