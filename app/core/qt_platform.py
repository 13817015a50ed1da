"""Can Qt's platform plugin load here? Checked before a QApplication exists, from files only.

Qt-free: PySide6 is located with importlib (not imported), and its platform plugin
(`plugins/platforms/libqxcb.so` for X11) is inspected with `ldd`, which lists every shared library
the plugin needs, its Qt xcb QPA library's included, and marks the missing ones "not found". Where
`ldd` is absent, the plugin is loaded with ctypes in a child process, which names the first missing
library. Missing system libraries are mapped to the Debian/Ubuntu and Fedora packages that ship
them, so the message can give the exact install commands. Qt itself would abort with "could not
load the Qt platform plugin" instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.core.safetext import quote

EXIT_GUI_UNAVAILABLE = 2
LDD_TIMEOUT_S = 20
X_CONNECT_TIMEOUT_S = 2.0
PLATFORM_ENV = "QT_QPA_PLATFORM"
PLUGIN_PATH_ENV = "QT_QPA_PLATFORM_PLUGIN_PATH"
# The plugin file(s) Qt loads for a platform name; the first that exists is checked.
PLUGIN_FILES = {
    "xcb": ("libqxcb.so",),
    "wayland": ("libqwayland.so", "libqwayland-generic.so", "libqwayland-egl.so"),
    "wayland-egl": ("libqwayland-egl.so",),
}
# soname without its version -> (Debian/Ubuntu package, Fedora package). The Debian names were
# checked with `dpkg -S` (installed) and apt-cache (the rest) on Debian 12; Ubuntu 24.04 ships the same names (glib as
# libglib2.0-0t64, which `apt-get install libglib2.0-0` selects). Fedora names are its package names.
PACKAGES: Mapping[str, tuple[str, str]] = {
    "libxcb-cursor": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util": ("libxcb-util1", "xcb-util"),
    "libxcb-xkb": ("libxcb-xkb1", "libxcb"),
    "libxcb-randr": ("libxcb-randr0", "libxcb"),
    "libxcb-shape": ("libxcb-shape0", "libxcb"),
    "libxcb-xinerama": ("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput": ("libxcb-xinput0", "libxcb"),
    "libxcb-xfixes": ("libxcb-xfixes0", "libxcb"),
    "libxcb-sync": ("libxcb-sync1", "libxcb"),
    "libxcb-shm": ("libxcb-shm0", "libxcb"),
    "libxcb-render": ("libxcb-render0", "libxcb"),
    "libxcb-glx": ("libxcb-glx0", "libxcb"),
    "libxcb": ("libxcb1", "libxcb"),
    "libxkbcommon-x11": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb": ("libx11-xcb1", "libX11-xcb"),
    "libX11": ("libx11-6", "libX11"),
    "libSM": ("libsm6", "libSM"),
    "libICE": ("libice6", "libICE"),
    "libEGL": ("libegl1", "libglvnd-egl"),
    "libGL": ("libgl1", "libglvnd-glx"),
    "libGLX": ("libglx0", "libglvnd-glx"),
    "libOpenGL": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig": ("libfontconfig1", "fontconfig"),
    "libfreetype": ("libfreetype6", "freetype"),
    "libdbus-1": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0": ("libglib2.0-0", "glib2"),
    "libwayland-client": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl": ("libwayland-egl1", "libwayland-egl"),
}
# Libraries that come with PySide6 itself (a damaged or partial install, not a system package).
PYSIDE_PREFIXES = ("libQt6", "libpyside6", "libshiboken6", "libicu")
PYSIDE_FIX = "pip install --force-reinstall PySide6-Essentials"
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)
_DLOPEN_MISSING = re.compile(r"(\S+\.so[.\d]*): cannot open shared object file")


@dataclass(frozen=True)
class QtPlatformCheck:
    """What was found. problem: None when the window can start; otherwise one of "no-pyside",
    "no-display", "no-plugin", "missing-libraries". message: the text for people (with the fix)."""

    platform: str
    plugin: str | None
    problem: str | None
    message: str
    missing: tuple[str, ...] = ()
    debian: tuple[str, ...] = ()
    fedora: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    method: str = ""
    data: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready dict of the finding."""
        return {"platform": self.platform, "plugin": self.plugin, "problem": self.problem,
                "missing": list(self.missing), "debian_packages": list(self.debian),
                "fedora_packages": list(self.fedora), "unknown": list(self.unknown), "method": self.method}


def platform_name(env: Mapping[str, str]) -> str:
    """The platform Qt will try first: QT_QPA_PLATFORM's first entry (without its options), else
    wayland in a Wayland session (XDG_SESSION_TYPE=wayland and WAYLAND_DISPLAY set), else xcb."""
    chosen = env.get(PLATFORM_ENV, "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return "wayland"
    return "xcb"


def pyside_dir() -> Path | None:
    """PySide6's package folder, found without importing it (None when it is not installed)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def plugin_file(name: str, env: Mapping[str, str], pyside: Path | None) -> Path | None:
    """The plugin file Qt would load for platform `name`: from QT_QPA_PLATFORM_PLUGIN_PATH when set
    (Qt looks there first), else PySide6's Qt/plugins/platforms."""
    folders = [Path(env[PLUGIN_PATH_ENV])] if env.get(PLUGIN_PATH_ENV) else []
    if pyside is not None:
        folders.append(pyside / "Qt" / "plugins" / "platforms")
    names = PLUGIN_FILES.get(name, (f"libq{name}.so",))
    for folder in folders:
        for file_name in names:
            if (folder / file_name).is_file():
                return folder / file_name
    return None


def missing_libraries(library: Path, env: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """The shared libraries `library` needs (directly or through its own dependencies) that the
    dynamic linker cannot find, and how that was found out ("ldd" or "dlopen")."""
    run_env = dict(os.environ if env is None else env)
    ldd = shutil.which("ldd", path=run_env.get("PATH"))
    if ldd:
        result = subprocess.run([ldd, str(library)], capture_output=True, text=True, env=run_env,
                                timeout=LDD_TIMEOUT_S, check=False)
        if result.returncode == 0 or "not found" in result.stdout:
            return list(dict.fromkeys(_NOT_FOUND.findall(result.stdout))), "ldd"
    code = "import ctypes, sys\ntry:\n    ctypes.CDLL(sys.argv[1])\nexcept OSError as exc:\n    print(exc)"
    result = subprocess.run([sys.executable, "-c", code, str(library)], capture_output=True, text=True,
                            env=run_env, timeout=LDD_TIMEOUT_S, check=False)
    return list(dict.fromkeys(_DLOPEN_MISSING.findall(result.stdout))), "dlopen"


def soname_stem(name: str) -> str:
    """"libxcb-cursor.so.0" -> "libxcb-cursor"."""
    return name.split(".so")[0]


def packages_for(missing: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(Debian/Ubuntu packages, Fedora packages, libraries with no known package) for `missing`."""
    debian: list[str] = []
    fedora: list[str] = []
    unknown: list[str] = []
    for name in missing:
        packages = PACKAGES.get(soname_stem(Path(name).name))
        if packages is None:
            unknown.append(name)
            continue
        if packages[0] not in debian:
            debian.append(packages[0])
        if packages[1] not in fedora:
            fedora.append(packages[1])
    return debian, fedora, unknown


def install_commands(debian: list[str], fedora: list[str]) -> list[str]:
    """The exact commands that install the packages (empty when there are none)."""
    if not debian:
        return []
    return [f"Debian/Ubuntu: sudo apt-get install -y {' '.join(debian)}",
            f"Fedora: sudo dnf install -y {' '.join(fedora)}"]


def check_qt_platform(env: Mapping[str, str] | None = None, *, system: str | None = None,
                      pyside: Path | None = None) -> QtPlatformCheck:
    """Whether the window can start here, judged before Qt loads anything.

    Only Linux is inspected (elsewhere Qt's plugins come with PySide6's wheel and need nothing
    from the system). `env`: the environment (default os.environ); `pyside`: PySide6's folder
    (default: the installed one).
    """
    env = os.environ if env is None else env
    system = sys.platform if system is None else system
    name = platform_name(env)
    if not system.startswith("linux"):
        return QtPlatformCheck(name, None, None, f"Qt platform {name}")
    pyside = pyside if pyside is not None else pyside_dir()
    if pyside is None:
        return QtPlatformCheck(name, None, "no-pyside", "PySide6 is not installed, so the window cannot open; "
                               "the command line works. Install it: pip install PySide6-Essentials")
    if name == "xcb" and not env.get("DISPLAY"):
        other = " (WAYLAND_DISPLAY is set: start it with QT_QPA_PLATFORM=wayland)" if env.get("WAYLAND_DISPLAY") else ""
        return QtPlatformCheck(name, None, "no-display",
                               "Stillroom's window needs a desktop session, and there is no display here "
                               f"(DISPLAY is not set){other}. Run it from a desktop session or under xvfb-run "
                               "(xvfb-run -a stillroom); the command line works without one: stillroom --help")
    if name.startswith("wayland") and not env.get("WAYLAND_DISPLAY"):
        return QtPlatformCheck(name, None, "no-display",
                               f"QT_QPA_PLATFORM is {name}, but WAYLAND_DISPLAY is not set: start Stillroom "
                               "from a Wayland session, or use QT_QPA_PLATFORM=xcb under X11")
    plugin = plugin_file(name, env, pyside)
    if plugin is None:
        if name in PLUGIN_FILES:
            return QtPlatformCheck(name, None, "no-plugin", f"Qt's {name} platform plugin is missing from "
                                   f"{pyside / 'Qt' / 'plugins' / 'platforms'}; reinstall Qt: {PYSIDE_FIX}")
        return QtPlatformCheck(name, None, None, f"Qt platform {name} (plugin not inspected)")
    missing, method = missing_libraries(plugin, env)
    if not missing and name == "xcb" and x_server_answers(env["DISPLAY"]) is False:
        return QtPlatformCheck(name, str(plugin), "display-unreachable",
                               f"Stillroom's window cannot open: DISPLAY is {quote(env['DISPLAY'])}, but no X "
                               "server accepts connections there (it may have stopped, or the session that set it "
                               "ended). Start Stillroom from a running desktop session, or under xvfb-run "
                               "(xvfb-run -a stillroom); the command line works without one: stillroom --help",
                               method=method)
    if not missing:
        return QtPlatformCheck(name, str(plugin), None, f"Qt's {name} platform plugin finds all its libraries",
                               method=method)
    debian, fedora, unknown = packages_for(missing)
    return QtPlatformCheck(name, str(plugin), "missing-libraries", _missing_message(name, plugin, missing, debian,
                           fedora, unknown), tuple(missing), tuple(debian), tuple(fedora), tuple(unknown), method)


def x_server_answers(display: str, timeout_s: float = X_CONNECT_TIMEOUT_S) -> bool | None:
    """Whether an X server accepts a connection at `display` (":N", ":N.S", "unix:N", "host:N"):
    the local socket (abstract, then /tmp/.X11-unix/XN) or TCP port 6000 + N. None for a form
    this does not know (then Qt is left to try)."""
    found = re.fullmatch(r"(?:unix|([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]))?:(\d{1,5})(?:\.\d+)?", display.strip())
    if found is None:
        return None
    host, number = found.group(1), int(found.group(2))
    if host:  # host:N is TCP (localhost too); :N and unix:N are the local socket
        if 6000 + number > 65535:
            return None
        try:
            with socket.create_connection((host.strip("[]"), 6000 + number), timeout=timeout_s):
                return True
        except OSError:
            return False
    for address in (f"\0/tmp/.X11-unix/X{number}", f"/tmp/.X11-unix/X{number}"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout_s)
            try:
                conn.connect(address)
                return True
            except OSError:
                continue
    return False


def _missing_message(name: str, plugin: Path, missing: list[str], debian: list[str], fedora: list[str],
                     unknown: list[str]) -> str:
    lines = [f"Stillroom's window cannot open: Qt's {name} platform plugin ({plugin}) needs system "
             f"libraries that are not installed: {', '.join(missing)}."]
    commands = install_commands(debian, fedora)
    if commands:
        lines.append("Install them with:")
        lines += [f"  {command}" for command in commands]
    ours = [lib for lib in unknown if lib.startswith(PYSIDE_PREFIXES)]
    others = [lib for lib in unknown if lib not in ours]
    if ours:
        lines.append(f"{', '.join(ours)} belong{'s' if len(ours) == 1 else ''} to Qt itself: {PYSIDE_FIX}")
    if others:
        lines.append(f"Find the package for {', '.join(others)} with: apt-file search NAME (Debian/Ubuntu) "
                     "or dnf provides '*/NAME' (Fedora)")
    lines.append("The command line works without them: stillroom --help")
    return "\n".join(lines)


def gui_start_problem(env: Mapping[str, str] | None = None) -> str | None:
    """The message to print instead of starting the window (exit with EXIT_GUI_UNAVAILABLE), or None.

    None too when PySide6 is not installed: the caller's import of the window fails then, and it
    falls back to the terminal."""
    check = check_qt_platform(env)
    return None if check.problem in (None, "no-pyside") else check.message
