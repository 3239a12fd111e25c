"""Can Qt open a window here? Checked before the QApplication exists, without importing Qt.

When Qt cannot load its platform plugin it calls ``abort()``: the user gets exit code 134, a
core dump and a message that is often wrong (Qt 6 names ``libxcb-cursor0`` whatever library is
really missing, e.g. ``libxcb-icccm4`` and ``libxcb-keysyms1`` on a stock Debian desktop). This
module looks first: the display the plugin will talk to, and the shared libraries the plugin
(found in PySide6's own folder) cannot resolve, listed by ``ldd`` — or, where ``ldd`` is missing,
by ``ctypes.util.find_library`` over the libraries Qt's xcb plugin is known to need. The result
is ONE line naming what is missing and the packages that provide it, so ``lstmviz`` can exit
cleanly instead.

``LSTMVIZ_TEST_MISSING_LIBS`` (sonames separated by spaces or commas) adds libraries to the
missing list, so tests can exercise the message on a machine that has them all.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: soname → (Debian/Ubuntu package, Fedora package) for what Qt 6's xcb and wayland plugins load.
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl"),
}

#: What ``find_library`` looks for when ``ldd`` is unavailable: the xcb plugin's direct needs.
XCB_LIBRARIES = (
    "libxcb-cursor.so.0",
    "libxcb-icccm.so.4",
    "libxcb-keysyms.so.1",
    "libxcb-image.so.0",
    "libxcb-render-util.so.0",
    "libxcb-util.so.1",
    "libxcb-randr.so.0",
    "libxcb-shape.so.0",
    "libxcb-shm.so.0",
    "libxcb-sync.so.1",
    "libxcb-xfixes.so.0",
    "libxcb-xkb.so.1",
    "libxcb.so.1",
    "libX11-xcb.so.1",
    "libxkbcommon-x11.so.0",
    "libxkbcommon.so.0",
)
WAYLAND_LIBRARIES = ("libwayland-client.so.0", "libwayland-cursor.so.0", "libxkbcommon.so.0")

#: Platforms that draw without a display server (or bring their own): nothing to check.
HEADLESS = frozenset({"offscreen", "minimal", "minimalegl", "vnc", "linuxfb", "eglfs"})
PLUGIN_FILES = {"xcb": "libqxcb.so", "wayland": "libqwayland.so"}
NO_DISPLAY = (
    "lstmviz: no display; use --screenshot or --info (DISPLAY and WAYLAND_DISPLAY are unset: "
    "the window needs a desktop session)"
)
EXIT_CODE = 3


@dataclass(frozen=True)
class Verdict:
    """``problem`` is None when Qt can start; ``platform`` is the plugin to ask Qt for (or None
    to leave Qt's own choice)."""

    problem: str | None = None
    platform: str | None = None


def check(environ: Mapping[str, str] | None = None, os_name: str | None = None) -> Verdict:
    """Decide before ``QApplication`` whether a window can open, and which platform to use."""
    env = os.environ if environ is None else environ
    os_name = sys.platform if os_name is None else os_name
    if not os_name.startswith("linux") and "bsd" not in os_name:
        return Verdict()  # macOS and Windows plugins ship inside the wheel and need no server
    requested = [p.split(":")[0] for p in env.get("QT_QPA_PLATFORM", "").split(";") if p]
    if requested and requested[0] in HEADLESS:
        return Verdict()
    candidates = requested or _default_platforms(env)
    problems = {name: _platform_problem(name, env) for name in candidates}
    working = [name for name, problem in problems.items() if problem is None]
    if len(working) == len(candidates):
        return Verdict()  # whichever Qt picks will start
    if working:  # Qt would abort on the broken entry instead of falling back: pin a good one
        return Verdict(platform=working[0])
    reasons = [p for p in problems.values() if p is not None]
    return Verdict(problem=next((p for p in reasons if p != NO_DISPLAY), NO_DISPLAY))


def _default_platforms(env: Mapping[str, str]) -> list[str]:
    """What Qt 6 may pick: wayland in a Wayland session (or with only WAYLAND_DISPLAY set),
    else xcb; in a Wayland session with XWayland either one, so both are checked."""
    wayland = bool(env.get("WAYLAND_DISPLAY"))
    if wayland and (env.get("XDG_SESSION_TYPE") == "wayland" or not env.get("DISPLAY")):
        return ["wayland", "xcb"] if env.get("DISPLAY") else ["wayland"]
    return ["xcb"]


def _platform_problem(name: str, env: Mapping[str, str]) -> str | None:
    """One line saying why platform ``name`` cannot start, or None when it can."""
    if name not in PLUGIN_FILES:
        return None
    var, other = ("DISPLAY", "WAYLAND_DISPLAY") if name == "xcb" else ("WAYLAND_DISPLAY", "DISPLAY")
    display = env.get(var)
    if not display:
        if env.get(other):  # a session of the other kind: QT_QPA_PLATFORM asked for this one
            return (
                f"lstmviz: QT_QPA_PLATFORM asks for {name} but {var} is unset ({other} is "
                f"set); unset QT_QPA_PLATFORM or set it to "
                f"{'wayland' if name == 'xcb' else 'xcb'}"
            )
        return NO_DISPLAY
    if name == "wayland" and not _wayland_socket(display, env).exists():
        return (
            f"lstmviz: no Wayland compositor at {display!r}; unset WAYLAND_DISPLAY or start "
            "lstmviz from a desktop session"
        )
    plugin = plugin_path(name, env)
    known = XCB_LIBRARIES if name == "xcb" else WAYLAND_LIBRARIES
    missing = missing_libraries(plugin, known) if plugin is not None else []
    missing += [m for m in _pretend_missing(env) if m not in missing]
    if missing:
        return missing_message(name, missing)
    if name == "xcb" and not x_display_reachable(display):
        return (
            f"lstmviz: cannot connect to the X display {display!r} (is the X server running, "
            "and is DISPLAY/XAUTHORITY right?); use --screenshot PNG or --info without a window"
        )
    return None


def _wayland_socket(display: str, env: Mapping[str, str]) -> Path:
    """Where libwayland-client looks: an absolute name as is, else under XDG_RUNTIME_DIR."""
    path = Path(display)
    return path if path.is_absolute() else Path(env.get("XDG_RUNTIME_DIR", "/nonexistent")) / path


def plugin_path(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The platform plugin Qt will load: from ``QT_QPA_PLATFORM_PLUGIN_PATH``, else PySide6's
    own ``Qt/plugins/platforms`` (found without importing PySide6)."""
    env = os.environ if env is None else env
    folders = (
        [Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"])] if env.get("QT_QPA_PLATFORM_PLUGIN_PATH") else []
    )
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        folders.append(Path(root) / "Qt" / "plugins" / "platforms")
    for folder in folders:
        path = folder / PLUGIN_FILES[name]
        if path.is_file():
            return path
    return None


def missing_libraries(plugin: Path, known: tuple[str, ...] = XCB_LIBRARIES) -> list[str]:
    """Sonames ``plugin`` needs (directly or through Qt's own libraries) that the dynamic
    loader cannot find, in ``ldd``'s order; without ``ldd``, the unfound ones of ``known``."""
    ldd = shutil.which("ldd")
    if ldd is not None:
        try:
            out = subprocess.run(
                [ldd, str(plugin)], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None:
            return parse_ldd(out)
    return [so for so in known if not _findable(so)]


def parse_ldd(text: str) -> list[str]:
    """``libfoo.so.1 => not found`` lines of ``ldd`` output, each soname once."""
    found: list[str] = []
    for match in re.finditer(r"^\s*(\S+)\s+=>\s+not found", text, flags=re.MULTILINE):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


def _findable(soname: str) -> bool:
    stem = re.sub(r"^lib|\.so.*$", "", soname)
    return ctypes.util.find_library(stem) is not None


def _pretend_missing(env: Mapping[str, str]) -> list[str]:
    return [s for s in re.split(r"[\s,]+", env.get("LSTMVIZ_TEST_MISSING_LIBS", "")) if s]


def missing_message(platform: str, missing: list[str]) -> str:
    """``lstmviz: Qt's xcb plugin cannot load: libxcb-icccm.so.4 … missing; install …``."""
    debian = _unique(PACKAGES[so][0] for so in missing if so in PACKAGES)
    fedora = _unique(PACKAGES[so][1] for so in missing if so in PACKAGES)
    unknown = [so for so in missing if so not in PACKAGES]
    fixes = []
    if debian:
        fixes.append(f"sudo apt install {' '.join(debian)} (Debian/Ubuntu)")
        fixes.append(f"sudo dnf install {' '.join(fedora)} (Fedora)")
    if unknown:
        fixes.append(f"install the packages providing {', '.join(unknown)}")
    return (
        f"lstmviz: cannot open a window: Qt's {platform} platform plugin needs "
        f"{', '.join(missing)}, not installed here; fix: {' or '.join(fixes)} "
        "(see docs/desktop_setup.md); --screenshot PNG and --info work without them"
    )


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def x_display_reachable(display: str) -> bool:
    """Open and close an X connection with libxcb (what Qt's xcb plugin does first).

    True when libxcb cannot be loaded here: then the library check has already spoken, or the
    platform is unusual, and Qt's own message is the better guide."""
    name = ctypes.util.find_library("xcb")
    if name is None:
        return True
    try:
        xcb = ctypes.CDLL(name)
    except OSError:
        return True
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    conn = xcb.xcb_connect(display.encode(), None)
    try:
        return bool(conn) and xcb.xcb_connection_has_error(conn) == 0
    finally:
        if conn:
            xcb.xcb_disconnect(conn)  # also frees the error object xcb returns on failure
