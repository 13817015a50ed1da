"""The check that runs before the window: Qt's platform plugin and the system libraries it needs,
on the installed plugin and on a real copy that needs a library this machine does not have."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.doctor import FAIL, format_check
from app.core.doctor_runtime import desktop_check
from app.core.qt_platform import (
    PACKAGES, check_qt_platform, gui_start_problem, missing_libraries, packages_for, platform_name, soname_stem,
    x_server_answers,
)
from tests.qt_plugin_files import ABSENT_NAME, plugin_missing_a_library

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Qt's plugins need system libraries on Linux")


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return plugin_missing_a_library(tmp_path / "qt")


def x11_env(plugins: Path | None = None, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "DISPLAY": ":97", **extra}
    if plugins is not None:
        env["QT_QPA_PLATFORM_PLUGIN_PATH"] = str(plugins)
    return env


def test_a_missing_library_is_named_with_both_install_commands(broken: Path) -> None:
    found = check_qt_platform(x11_env(broken), system="linux")
    assert found.problem == "missing-libraries" and found.method == "ldd"
    assert found.plugin == str(broken / "libqxcb.so")
    assert ABSENT_NAME in found.missing
    assert "libxcb-cursor0" in found.debian and "xcb-util-cursor" in found.fedora
    lines = found.message.splitlines()
    assert any(line.strip().startswith("Debian/Ubuntu: sudo apt-get install -y ") and "libxcb-cursor0" in line
               for line in lines)
    assert any(line.strip().startswith("Fedora: sudo dnf install -y ") and "xcb-util-cursor" in line for line in lines)
    # Every library ldd cannot find is listed, and nothing it finds.
    listed = subprocess.run(["ldd", found.plugin], capture_output=True, text=True, check=False).stdout
    assert set(found.missing) == {line.split()[0] for line in listed.splitlines() if "not found" in line}


def test_without_ldd_the_child_loader_names_a_missing_library(broken: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    missing, method = missing_libraries(broken / "libqxcb.so", {"PATH": str(empty)})
    assert method == "dlopen" and missing
    ldd_missing, _ = missing_libraries(broken / "libqxcb.so", {"PATH": os.environ.get("PATH", "")})
    assert set(missing) <= set(ldd_missing)


def test_the_gui_start_check_and_the_doctor_report_the_same(broken: Path) -> None:
    message = gui_start_problem(x11_env(broken))
    assert message is not None and ABSENT_NAME in message and "libxcb-cursor0" in message
    check = desktop_check(x11_env(broken))
    assert check.status == FAIL and ABSENT_NAME in check.detail
    assert "sudo apt-get install -y" in (check.fix or "") and "sudo dnf install -y" in (check.fix or "")
    assert "fix: " in format_check(check)


def test_no_display_is_said_plainly() -> None:
    env = {"PATH": os.environ.get("PATH", "")}
    found = check_qt_platform(env, system="linux")
    assert found.problem == "no-display" and "xvfb-run" in found.message
    assert gui_start_problem(env) == found.message


def test_the_offscreen_plugin_loads_here() -> None:
    found = check_qt_platform({"PATH": os.environ.get("PATH", ""), "QT_QPA_PLATFORM": "offscreen"}, system="linux")
    assert found.ok, found.message
    assert found.plugin is not None and found.plugin.endswith("libqoffscreen.so")


def test_platform_choice_follows_qt() -> None:
    assert platform_name({}) == "xcb"
    assert platform_name({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"
    assert platform_name({"QT_QPA_PLATFORM": "xcb:nograb"}) == "xcb"
    assert platform_name({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}) == "wayland"
    assert platform_name({"WAYLAND_DISPLAY": "wayland-0"}) == "xcb"


def test_unknown_and_qt_libraries_get_their_own_advice() -> None:
    debian, fedora, unknown = packages_for(["libxcb-icccm.so.4", "libQt6XcbQpa.so.6", "libodd.so.1"])
    assert (debian, fedora, unknown) == (["libxcb-icccm4"], ["xcb-util-wm"], ["libQt6XcbQpa.so.6", "libodd.so.1"])


@pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("ldconfig") is None, reason="Debian tools")
def test_debian_package_names_are_the_ones_that_ship_the_libraries() -> None:
    """For every library installed here, dpkg says which package ships it: the table must agree."""
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    paths: dict[str, str] = {}
    for line in cache.splitlines():
        if "=>" in line and ("x86-64" in line or "AArch64" in line):
            name, path = line.split()[0], line.split("=>")[1].strip()
            if ".so." in name:
                paths.setdefault(soname_stem(name), path)
    # By file name: merged-/usr systems register some files under /lib, others under /usr/lib.
    real = {stem: os.path.realpath(path) for stem, path in paths.items() if stem in PACKAGES}
    wanted = {stem: Path(path).name for stem, path in real.items()}
    candidates = [p for path in real.values() for p in (path, path.replace("/usr/lib/", "/lib/", 1))]
    owners = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True, check=False).stdout
    owner_of: dict[str, set[str]] = {}
    for line in owners.splitlines():
        if ": " in line:
            packages, path = line.split(": ", 1)
            owner_of.setdefault(Path(path.strip()).name, set()).update(
                part.split(":")[0].strip() for part in packages.split(","))
    for stem, name in wanted.items():
        debian = PACKAGES[stem][0]
        assert debian in owner_of.get(name, set()) or debian + "t64" in owner_of.get(name, set()), (stem, name)
    assert len(wanted) >= 10


def _loadable_xcb_plugin(root: Path) -> Path:
    """A plugin folder whose libqxcb.so needs nothing missing here (a copy of the offscreen plugin,
    laid out as Qt's, so that its own libraries resolve): what a machine with every library has."""
    qt = Path(check_qt_platform({"PATH": os.environ.get("PATH", ""), "QT_QPA_PLATFORM": "offscreen"},
                                system="linux").plugin or "").parents[2]
    platforms = root / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (root / "lib").symlink_to(qt / "lib", target_is_directory=True)
    shutil.copy2(qt / "plugins" / "platforms" / "libqoffscreen.so", platforms / "libqxcb.so")
    return platforms


def test_a_display_no_x_server_answers_is_said_plainly(tmp_path: Path) -> None:
    """DISPLAY set to a display nothing listens on (a stopped Xvfb, a closed SSH session): Qt would
    abort with a core dump; the check names the display instead, and the doctor fails the desktop."""
    env = x11_env(_loadable_xcb_plugin(tmp_path), DISPLAY=":9871")
    found = check_qt_platform(env, system="linux")
    assert found.problem == "display-unreachable", found.message
    assert '":9871"' in found.message and "xvfb-run" in found.message and gui_start_problem(env) == found.message
    assert desktop_check(env).status == FAIL
    # a hostile DISPLAY is quoted with its control characters escaped, not written to the terminal
    hostile = check_qt_platform({**env, "DISPLAY": ":9871\x1b[2J"}, system="linux")
    assert "\x1b" not in hostile.message


def test_a_listening_x_socket_counts_as_an_answer(tmp_path: Path) -> None:
    number = 9000 + os.getpid() % 900
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(f"\0/tmp/.X11-unix/X{number}")  # the abstract socket an X server listens on
        server.listen(16)
        assert x_server_answers(f":{number}") is True and x_server_answers(f"unix:{number}.0") is True
        env = x11_env(_loadable_xcb_plugin(tmp_path), DISPLAY=f":{number}")
        assert check_qt_platform(env, system="linux").ok
    assert x_server_answers(f":{number}") is False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        if port > 6000:  # TCP displays are ports 6000 + N
            assert x_server_answers(f"127.0.0.1:{port - 6000}") is True
    assert x_server_answers("not a display") is None and x_server_answers("") is None
