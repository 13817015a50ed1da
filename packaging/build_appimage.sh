#!/usr/bin/env bash
# Turn the one-folder build (dist/stillroom, from `make package`) into Stillroom-<arch>.AppImage.
#
#   packaging/build_appimage.sh            # AppDir in build/AppDir, AppImage in dist/
#   APPIMAGETOOL=/path/to/appimagetool packaging/build_appimage.sh
#   APPIMAGE_RUNTIME=/path/to/runtime-x86_64 packaging/build_appimage.sh   # build without network
#
# It always assembles the AppDir. It then needs appimagetool (github.com/AppImage/appimagetool,
# "continuous" release: appimagetool-<arch>.AppImage), which is packaged neither in Debian nor on
# PyPI or npm (the PyPI tools that build AppImages download it from GitHub when they run).
# appimagetool itself downloads the AppImage runtime unless --runtime-file is given, so for an
# offline build also fetch runtime-<arch> (github.com/AppImage/type2-runtime releases) and pass it
# as APPIMAGE_RUNTIME. Without FUSE, run appimagetool as `appimagetool --appimage-extract-and-run`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="$ROOT/dist/stillroom"
APPDIR="$ROOT/build/AppDir"
ARCH="${ARCH:-$(uname -m)}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/app/__init__.py")"
OUTPUT="$ROOT/dist/Stillroom-$VERSION-$ARCH.AppImage"

if [[ ! -x "$DIST/stillroom" ]]; then
    echo "error: $DIST/stillroom not found; build it first with: make package" >&2
    exit 2
fi

echo "Assembling $APPDIR"
rm -rf "$APPDIR"
mkdir -p "$APPDIR/usr/lib" "$APPDIR/usr/bin" "$APPDIR/usr/share/applications" \
         "$APPDIR/usr/share/icons/hicolor/256x256/apps"
cp -a "$DIST" "$APPDIR/usr/lib/stillroom"
ln -s ../lib/stillroom/stillroom "$APPDIR/usr/bin/stillroom"
cp "$ROOT/packaging/stillroom.desktop" "$APPDIR/stillroom.desktop"
cp "$ROOT/packaging/stillroom.desktop" "$APPDIR/usr/share/applications/stillroom.desktop"
cp "$ROOT/assets/stillroom-256.png" "$APPDIR/stillroom.png"
cp "$ROOT/assets/stillroom-256.png" "$APPDIR/usr/share/icons/hicolor/256x256/apps/stillroom.png"
ln -s stillroom.png "$APPDIR/.DirIcon"
cat > "$APPDIR/AppRun" <<'APPRUN'
#!/bin/sh
# Stillroom: the window with no arguments, the command line with arguments.
HERE="$(dirname "$(readlink -f "$0")")"
exec "$HERE/usr/lib/stillroom/stillroom" "$@"
APPRUN
chmod +x "$APPDIR/AppRun"

TOOL="${APPIMAGETOOL:-$(command -v appimagetool || command -v appimagetool-"$ARCH".AppImage || true)}"
if [[ -z "$TOOL" ]]; then
    cat >&2 <<NEEDS
The AppDir is ready at $APPDIR (run it directly: $APPDIR/AppRun).
To pack it into an AppImage this script needs appimagetool, which is not installed:
  1. Download appimagetool-$ARCH.AppImage from https://github.com/AppImage/appimagetool/releases
     (tag "continuous"), chmod +x it, and put it on PATH as appimagetool or pass APPIMAGETOOL=/path.
  2. For a build without network also download runtime-$ARCH from
     https://github.com/AppImage/type2-runtime/releases and pass APPIMAGE_RUNTIME=/path.
  3. Without FUSE (containers, CI): APPIMAGETOOL="/path/appimagetool --appimage-extract-and-run".
Then run this script again; it writes $OUTPUT.
NEEDS
    exit 3
fi

ARGS=()
if [[ -n "${APPIMAGE_RUNTIME:-}" ]]; then
    ARGS+=(--runtime-file "$APPIMAGE_RUNTIME")
fi
echo "Packing $OUTPUT with $TOOL"
# shellcheck disable=SC2086  # APPIMAGETOOL may carry its own flags
ARCH="$ARCH" $TOOL "${ARGS[@]}" "$APPDIR" "$OUTPUT"
echo "Built $OUTPUT ($(du -h "$OUTPUT" | cut -f1))"
