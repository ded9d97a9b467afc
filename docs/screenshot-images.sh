#!/usr/bin/env bash
# Renders docs/screens/images.png, the README's picture of an image in a
# chat: the real app window under Xvfb (`gooseapp --smoke-test`) with a
# VisualRWKV-7 model, which sends a picture with its message.
#
#   docs/screenshot-images.sh [VISUALRWKV.pth]
#
# With no model it writes a small random-weight VisualRWKV-7 first (gooseapp
# testmodel --kind visualrwkv), whose answer is gibberish. Needs xvfb-run
# and ImageMagick (packaging/deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/gooseapp" ./cmd/gooseapp
model=${1:-}
if [ -z "$model" ]; then
  "$tmp/gooseapp" testmodel --kind visualrwkv --out "$tmp/visual.safetensors" >/dev/null
  model=$tmp/visual.safetensors
fi
LANG=C.UTF-8 xvfb-run -a -s "-screen 0 1280x800x24" \
  "$tmp/gooseapp" --smoke-test --model "$model" --screenshot "$tmp/shot.png"
mkdir -p docs/screens
convert "$tmp/shot.png" -resize 900x -strip -colors 256 PNG8:docs/screens/images.png
echo "wrote docs/screens/images.png ($(du -h docs/screens/images.png | cut -f1))"
