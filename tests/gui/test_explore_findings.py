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
