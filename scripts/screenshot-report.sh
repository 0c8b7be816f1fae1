#!/usr/bin/env bash
# Looks at a report as a person would: headless Chromium renders RUN_DIR/report/report.html
# (written by `alexnet report RUN_DIR`) and saves a full-page screenshot.
#
#   scripts/screenshot-report.sh RUN_DIR [OUT.png] [WIDTH]
#
# Needs Debian's chromium (`apt-get install chromium`). The page loads nothing from the network.
set -euo pipefail
run_dir=${1:?usage: scripts/screenshot-report.sh RUN_DIR [OUT.png] [WIDTH]}
out=${2:-$run_dir/report/screenshot.png}
width=${3:-1280}
page=$(realpath "$run_dir/report/report.html")
[ -f "$page" ] || { echo "error: $page does not exist: run alexnet report $run_dir first" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The page's height, so that the screenshot holds all of it: Chromium prints the rendered DOM,
# but not its height, so render once at a tall size and let the image be cropped below.
height=${HEIGHT:-6000}
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size="$width,$height" \
    --screenshot="$(realpath -m "$out")" "file://$page" 2>/dev/null
echo "screenshot: $out (${width}x${height})"
