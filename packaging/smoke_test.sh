#!/usr/bin/env bash
# Run the built app (dist/stillroom) the way a user would, on a fresh data folder, and report.
#
#   packaging/smoke_test.sh [SCREENSHOT.png]
#
# generate with the default model (first run assembles it), doctor, audit, the window under Xvfb
# (needs xvfb-run; ImageMagick's `import` for the screenshot). Exits non-zero on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="$ROOT/dist/stillroom/stillroom"
SHOT="${1:-$ROOT/build/smoke-window.png}"
[[ -x "$APP" ]] || { echo "error: $APP not found; build it first with: make package" >&2; exit 2; }

STILLROOM_HOME="$(mktemp -d)/Stillroom"
export STILLROOM_HOME
trap 'rm -rf "$(dirname "$STILLROOM_HOME")"' EXIT
echo "data folder: $STILLROOM_HOME"
echo "size: $(du -sh "$ROOT/dist/stillroom" | cut -f1)"

start=$(date +%s.%N)
"$APP" generate --max-tokens 24 --seed 3 "The three primary colours are"
echo "first generate: $(echo "$(date +%s.%N) - $start" | bc) s (includes assembling the default model)"

"$APP" doctor --quick
"$APP" generate --chat --max-tokens 16 --seed 3 --workflow smoke "Name three colours."
start=$(date +%s.%N)
"$APP" audit --markdown > /dev/null
echo "audit: $(echo "$(date +%s.%N) - $start" | bc) s"
"$APP" log verify

if command -v xvfb-run > /dev/null; then
    mkdir -p "$(dirname "$SHOT")"
    xvfb-run -a -s "-screen 0 1400x900x24" bash -c '
        "$0" & pid=$!
        sleep 25
        kill -0 "$pid" || { echo "error: the window exited" >&2; exit 1; }
        if command -v import > /dev/null; then import -window root "$1"; echo "screenshot: $1"; fi
        kill "$pid"; wait "$pid" || true' "$APP" "$SHOT"
    echo "window: opened and stayed up for 25 s"
else
    echo "window: skipped (xvfb-run is not installed)"
fi
echo "smoke test passed"
