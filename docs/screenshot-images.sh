#!/usr/bin/env bash
# Renders docs/screens/images.png, the README's picture of an image in a
# chat: the real app window under Xvfb (`gooseapp --smoke-test`) with a
# VisualRWKV-7 model, which sends a picture with its message.
#
#   docs/screenshot-images.sh [VISUALRWKV.pth]
#
# With no model it writes a small random-weight VisualRWKV-7 first (gooseapp
# testmodel --kind visualrwkv), whose answer is gibberish. Needs xvfb-run
# and ImageMagick (packaging/deps.sh installs both). docs/screenshot.sh does
# the work.
set -euo pipefail
exec "$(dirname "$0")/screenshot.sh" --kind visualrwkv --out docs/screens/images.png "$@"
