"""Start-up without a usable display or with Qt's platform libraries missing: ONE line naming
what is missing and the fix, a non-zero exit, never Qt's abort (exit 134, core dump)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstmviz.gui import display_check

ROOT = Path(__file__).resolve().parents[1]
FAKE_PLATFORMS = ROOT / "tests" / "fixtures" / "startup" / "fake_platforms"
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="xcb/wayland plugins exist on Linux only"
)

#: ``ldd libqxcb.so`` on a stock Debian 12 desktop with PySide6 6.11 (abridged).
DEBIAN_LDD = """\
\tlinux-vdso.so.1 (0x00007f0ad69b7000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f0ad68e9000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f0ad67ff000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f0ad67f7000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0ad69b9000)
"""


def stripped_env(**extra: str) -> dict[str, str]:
    """The test's environment without any display or Qt platform choice, plus ``extra``."""
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "QT_QPA_PLATFORM_PLUGIN_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("XDG_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_lstmviz(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lstmviz", *args],
        capture_output=True,
        text=True,
        env=stripped_env(**env),
        cwd=ROOT,
        timeout=120,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# -- the whole program, in a subprocess -----------------------------------------------------------
@linux_only
def test_no_display_says_so_in_one_line_instead_of_dumping_core():
    out = run_lstmviz()
    assert out.returncode == display_check.EXIT_CODE, (out.returncode, out.stderr)
    line = one_line(out.stderr)
    assert line.startswith("lstmviz: no display; use --screenshot or --info"), line


@linux_only
def test_missing_xcb_libraries_are_named_with_their_packages():
    """The Debian case: Qt says "xcb-cursor0 is needed"; the real culprits are named here."""
    out = run_lstmviz(
        DISPLAY=":0", LSTMVIZ_TEST_MISSING_LIBS="libxcb-icccm.so.4 libxcb-keysyms.so.1"
    )
    assert out.returncode == display_check.EXIT_CODE, (out.returncode, out.stderr)
    line = one_line(out.stderr)
    assert "libxcb-icccm.so.4" in line and "libxcb-keysyms.so.1" in line
    assert "apt install libxcb-icccm4 libxcb-keysyms1" in line
    assert "dnf install xcb-util-wm xcb-util-keysyms" in line
    assert "xcb-cursor" not in line  # Qt's own (wrong) guess is not repeated


@linux_only
def test_libraries_missing_from_a_plugin_are_found_with_ldd():
    """A stand-in plugin (made by make_fake_plugin.sh) needs a library no system has."""
    out = run_lstmviz(DISPLAY=":0", QT_QPA_PLATFORM_PLUGIN_PATH=str(FAKE_PLATFORMS))
    assert out.returncode == display_check.EXIT_CODE, (out.returncode, out.stderr)
    line = one_line(out.stderr)
    assert "liblstmviz-absent-for-tests.so.1" in line
    assert "install the packages providing liblstmviz-absent-for-tests.so.1" in line


@linux_only
def test_screenshot_still_works_when_the_window_could_not_open(tmp_path):
    """A headless run falls back to the offscreen platform instead of failing the check."""
    png = tmp_path / "w.png"
    out = run_lstmviz(
        "--screenshot", str(png), DISPLAY=":0", LSTMVIZ_TEST_MISSING_LIBS="libxcb-icccm.so.4"
    )
    assert out.returncode == 0, out.stderr
    assert png.stat().st_size > 10_000


# -- the check itself -----------------------------------------------------------------------------
def test_parse_ldd_lists_each_missing_library_once():
    assert display_check.parse_ldd(DEBIAN_LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_message_names_debian_and_fedora_packages_for_known_libraries():
    line = display_check.missing_message("xcb", ["libxcb-icccm.so.4", "libxkbcommon-x11.so.0"])
    assert "\n" not in line
    assert "sudo apt install libxcb-icccm4 libxkbcommon-x11-0 (Debian/Ubuntu)" in line
    assert "sudo dnf install xcb-util-wm libxkbcommon-x11 (Fedora)" in line
    assert "--screenshot" in line and "--info" in line


def test_headless_platforms_and_other_systems_need_no_display():
    assert display_check.check({"QT_QPA_PLATFORM": "offscreen"}, "linux").problem is None
    assert display_check.check({"QT_QPA_PLATFORM": "minimal"}, "linux").problem is None
    assert display_check.check({}, "darwin").problem is None
    assert display_check.check({}, "win32").problem is None


def test_no_display_at_all_is_the_no_display_message():
    verdict = display_check.check({}, "linux")
    assert verdict.problem == display_check.NO_DISPLAY
    verdict = display_check.check({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert verdict.problem == display_check.NO_DISPLAY


def test_a_platform_forced_against_the_session_is_named():
    verdict = display_check.check({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":0"}, "linux")
    assert verdict.problem is not None
    assert "QT_QPA_PLATFORM asks for wayland but WAYLAND_DISPLAY is unset" in verdict.problem


def test_without_ldd_the_known_libraries_are_looked_up(monkeypatch):
    monkeypatch.setattr(display_check.shutil, "which", lambda name: None)
    monkeypatch.setattr(display_check, "_findable", lambda so: so != "libxcb-keysyms.so.1")
    assert display_check.missing_libraries(Path("/nonexistent/libqxcb.so")) == [
        "libxcb-keysyms.so.1"
    ]


@linux_only
def test_an_x_display_nobody_serves_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(display_check, "missing_libraries", lambda plugin, known: [])
    verdict = display_check.check({"DISPLAY": ":7391"}, "linux")
    if display_check.x_display_reachable(":7391"):  # pragma: no cover - a server on :7391
        pytest.fail("an X server answers on :7391; pick another display number")
    assert verdict.problem is not None and "cannot connect to the X display ':7391'" in (
        verdict.problem
    )


def test_a_broken_wayland_falls_back_to_a_working_xcb(monkeypatch):
    """In a Wayland session with XWayland Qt may pick either; pin the one that works."""
    monkeypatch.setattr(
        display_check,
        "_platform_problem",
        lambda name, env: "broken" if name == "wayland" else None,
    )
    env = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    assert display_check.check(env, "linux").platform == "xcb"


def test_the_first_window_fits_a_small_screen():
    """1400 × 900 on a 1280 × 800 laptop put the right dock and the status bar off screen."""
    from PySide6.QtCore import QRect

    from lstmviz.gui.app import WINDOW_SIZE, fit_to_screen

    class Screen:
        def availableGeometry(self):
            return QRect(0, 27, 1280, 773)

    class App:
        def primaryScreen(self):
            return Screen()

    assert fit_to_screen(App(), WINDOW_SIZE) == (1280, 773)
    assert fit_to_screen(App(), (1024, 700)) == (1024, 700)
