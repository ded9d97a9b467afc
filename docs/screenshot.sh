#!/usr/bin/env bash
# Renders docs/screenshot.png, the picture at the top of the README: the real
# app window, opened under Xvfb by `gooseapp --smoke-test`, after loading MODEL
# and sending one message.
#
#   docs/screenshot.sh [--kind lm|visualrwkv] [--out FILE.png] [MODEL.pth|MODEL.safetensors]
#
# With no MODEL it writes a small random-weight model of --kind first
# (gooseapp testmodel), whose reply is gibberish; give a real RWKV-7
# checkpoint for a real reply. --out (default docs/screenshot.png) is where
# the picture goes; docs/screenshot-images.sh renders the README's other
# picture through it. Needs xvfb-run and ImageMagick (packaging/deps.sh
# installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=lm
dest=docs/screenshot.png
while [ $# -gt 0 ]; do
  case $1 in
    --kind) kind=$2; shift 2 ;;
    --out) dest=$2; shift 2 ;;
    *) break ;;
  esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gooseapp" ./cmd/gooseapp
model=${1:-}
if [ -z "$model" ]; then
  "$tmp/gooseapp" testmodel --kind "$kind" --out "$tmp/test-model.safetensors" >/dev/null
  model=$tmp/test-model.safetensors
fi
LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1280x800x24" \
  "$tmp/gooseapp" --smoke-test --model "$model" --screenshot "$tmp/shot.png"
# Small enough for a README: 900 px wide, 256 colours.
mkdir -p "$(dirname "$dest")"
convert "$tmp/shot.png" -resize 900x -strip -colors 256 PNG8:"$dest"
echo "wrote $dest ($(du -h "$dest" | cut -f1))"
