"""A new user's findings in the explore feature, in a real window: the status line after a
match is opened, the GUI's matches against the README's API snippet for the same selection,
and the Select and match dock at 1400 × 900."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def brackets(make_main_window, qtbot):
    """``lstmviz --example brackets`` at 1400 × 900, steps 10-14 selected, units selected at
    threshold 0.3 and matched in the corpus (the new user's clicks)."""
    from lstmviz.gui.app import open_from_args

    window = make_main_window(size=(1400, 900))
    args = argparse.Namespace(path=None, sequence=None, layer=None, step=None, example="brackets")
    assert open_from_args(window, args, {})
    session, ws, panel = window.explore, window.workspace, window.explore_panel
    window.tabs.setCurrentIndex(1)
    ws.ensure_trace(wait=True)
    session.selection.set_span(10, 15)
    panel.threshold_slider.setValue(30)
    panel.select_button.click()
    qtbot.waitUntil(lambda: bool(session.selection.units) and not ws.jobs, timeout=20000)
    panel.match_button.click()
    qtbot.waitUntil(lambda: bool(session.matches) and not ws.jobs, timeout=30000)
    return window


def test_status_line_names_the_opened_match_document(brackets, qtbot):
    window = brackets
    session = window.explore
    first = session.matches[0]
    assert first.document != 0  # the sequence shown before is the corpus' start
    window.explore_panel.matches.open_match(0)
    qtbot.waitUntil(lambda: session.document == first.document, timeout=10000)
    n = len(window.workspace.sequence)
    text = window.status_label.text()
    assert f"doc {first.document} ({n} steps)" in text, text
    assert "brackets_sequence.csv" not in text
    # the sequence panel shows the document too (its values and its step count)
    editor = window.debug_panel.sequence_editor
    assert f"{n} steps" in editor.message.text(), editor.message.text()
    assert editor.text.toPlainText().count("\n") + 1 >= n - 1


def _readme_snippet() -> str:
    """The README's "Explore a corpus" Python block, as printed."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Explore a corpus") :]
    return section[section.index("```python") + len("```python") : section.index("```\n\n")]


def test_gui_matches_equal_the_readme_snippet(brackets, monkeypatch):
    """The README's snippet, run as printed (from the repository root), gives the GUI's
    matches and hit rates for the same selection (steps 10-14 at threshold 0.3)."""
    window = brackets
    monkeypatch.chdir(ROOT)
    scope: dict = {"print": lambda *a: None}
    exec(compile(_readme_snippet(), "README.md", "exec"), scope)
    units, api, notes = scope["units"], scope["matches"], scope["notes"]
    session = window.explore
    assert (session.unit_set.start, session.unit_set.stop) == (units.start, units.stop)
    assert list(session.unit_set.units) == list(units.units)
    gui = session.matches
    assert [(m.start, m.stop, m.score) for m in gui] == [(m.start, m.stop, m.score) for m in api]
    rates = notes.hit_rates(api)
    label = window.explore_panel.matches.hit_rates.text()
    for name, rate in rates.items():
        assert f"{name}: {rate:.0%}" in label, (label, rates)
    # the README's comment prints what the snippet gives
    shown = "{" + ", ".join(f"'{k}': {v:.2g}" for k, v in rates.items()) + "}"
    assert f"notes.hit_rates(matches)  # {shown}" in _readme_snippet(), shown


@pytest.fixture
def docked(make_main_window, qtbot):
    """The model and its sequence opened by hand at 1400 × 900, the Details dock showing, then
    View ▸ Select and match (the dock's own place, not the example's layout)."""
    from lstmviz.gui.explore_dock import build_explore_panel
    from lstmviz.resources import example

    ex = example("brackets")
    window = make_main_window(size=(1400, 900))
    window.open_model(ex.model, wait=True)
    assert window.workspace.model is not None
    assert window.open_sequence(ex.sequence)
    window.side_dock.show()
    window.explore_dock.toggleViewAction().trigger()
    build_explore_panel(window)
    qtbot.waitUntil(lambda: window.explore_dock.isVisible(), timeout=5000)
    qtbot.wait(50)
    return window


def test_docked_panel_is_not_cut_off(docked):
    window = docked
    panel, dock = window.explore_panel, window.explore_dock
    scroll = dock.widget()
    viewport = scroll.viewport()
    assert not scroll.horizontalScrollBar().isVisible()
    assert viewport.width() >= panel.minimumSizeHint().width()
    for button in (panel.select_button, panel.match_button, panel.stop_box):
        right = button.mapTo(viewport, button.rect().topRight()).x()
        assert right <= viewport.width(), button.text() if hasattr(button, "text") else button
        assert button.width() >= button.minimumSizeHint().width()
    # not squashed under Details: the unit plots and the match list get room
    assert dock.height() >= 600, dock.height()
    assert panel.matches.height() >= 120 and panel.unit_set_view.height() >= 160


def test_steps_start_takes_10_while_to_is_0(docked, qtbot):
    from PySide6.QtCore import Qt

    panel, selection = docked.explore_panel, docked.explore.selection
    assert panel.stop_box.value() == 0
    panel.start_box.setFocus()
    panel.start_box.selectAll()
    qtbot.keyClicks(panel.start_box, "10")
    qtbot.keyClick(panel.start_box, Qt.Key.Key_Return)
    assert panel.start_box.value() == 10
    assert selection.span == (10, 11)
    panel.stop_box.selectAll()
    qtbot.keyClicks(panel.stop_box, "14")
    qtbot.keyClick(panel.stop_box, Qt.Key.Key_Return)
    assert selection.span == (10, 15)
    assert (panel.start_box.value(), panel.stop_box.value()) == (10, 14)


def test_unit_plot_without_units_says_so(docked, qtbot):
    view = docked.explore_panel.unit_set_view
    assert not docked.explore.selection.units
    assert view.empty and view.empty_text.isVisible()
    assert "No units selected" in view.empty_text.textItem.toPlainText()
    # wrapped to the docked width, not cut off at both ends
    assert view.empty_text.textItem.boundingRect().width() <= view.width()
    assert not view.heat_plot.isVisible()
    assert not any(r.isVisible() for r in view.regions)  # no shaded 0-1 span
    assert not view.line_plot.getAxis("left").isVisible()
    docked.explore.selection.set_units([3, 4])
    docked.workspace.ensure_trace(wait=True)
    qtbot.waitUntil(lambda: not view.empty, timeout=5000)
    assert view.heat_plot.isVisible() and not view.empty_text.isVisible()
