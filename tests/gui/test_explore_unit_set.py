"""The unit set: a Qt-free model edited like a list or by a rule, drawn as lines and a
heatmap sorted by activity whose data are the run's values."""

from __future__ import annotations

import numpy as np
import pytest
from model_factories import keras_like
from PySide6.QtCore import Qt

from lstmviz.core.compute import run
from lstmviz.workspace.unit_selection import Field, UnitSelection, activity_order


def test_unit_selection_edits_like_a_list_and_emits_once_per_change():
    sel, heard = UnitSelection(), []
    sel.subscribe(heard.append)
    sel.click(5)
    sel.extend(8)  # shift-click: 5..8
    assert sel.units == (5, 6, 7, 8)
    sel.toggle(6)  # ctrl-click
    assert sel.units == (5, 7, 8)
    sel.set_units([8, 7, 5])  # no change, no event
    sel.set_span(9, 3)
    sel.set_quantity("f")
    assert sel.span == (3, 9) and sel.quantity == "f"
    assert heard == [Field.UNITS] * 3 + [Field.SPAN, Field.QUANTITY]
    sel.clamp(8)
    assert sel.units == (5, 7)
    with pytest.raises(ValueError, match="quantity must be one of"):
        sel.set_quantity("q")  # no registered cell records a q


def test_rules_pick_units_from_the_run():
    model = keras_like(D=3, H=8, seed=1)[0]
    x = np.random.default_rng(0).normal(size=(40, 3))
    trace = run(model, x)
    h = trace.layers[0].directions[0].h
    sel = UnitSelection()
    assert sel.by_threshold(h, 0.1, 10, 15) == tuple(np.flatnonzero((h[10:15] >= 0.1).all(0)))
    steps = range(10, 15)
    got = sel.by_expression(trace, 0, 0, "h > 0.1", steps)
    assert got == tuple(np.flatnonzero((h[10:15] > 0.1).all(0)))
    f = trace.layers[0].directions[0].f
    got = sel.by_expression(trace, 0, 0, "f < 0.5 in units 0-3", [7])
    assert got == tuple(u for u in range(4) if f[7, u] < 0.5)
    with pytest.raises(ValueError, match="reduces over units"):
        sel.by_expression(trace, 0, 0, "mean h > 0", [1])
    with pytest.raises(ValueError, match="names no units"):
        sel.by_expression(trace, 0, 0, "step 4", [1])
    assert activity_order(h, [0, 1, 2]) == sorted([0, 1, 2], key=lambda u: -h[:, u].mean())


def test_lines_and_heatmap_show_the_set_sorted_by_activity(make_main_window, qtbot):
    window = make_main_window()
    window.set_model(keras_like(D=3, H=8, seed=1)[0])
    window.set_sequence(np.random.default_rng(0).normal(size=(60, 3)))
    window.explore_dock.show()
    ws = window.workspace
    ws.ensure_trace(wait=True)
    session, view = window.explore, window.explore_panel.unit_set_view
    session.selection.set_units([1, 4, 6])
    for q in ("h", "f"):
        session.selection.set_quantity(q)
        values = getattr(ws.trace.layers[0].directions[0], q)
        order = sorted([1, 4, 6], key=lambda u: -values[:, u].mean())
        assert view.rows == order
        for k, u in enumerate(order):
            t, y = view.line_data(k)
            np.testing.assert_array_equal(t, np.arange(60))
            np.testing.assert_array_equal(y, values[:, u])
        with pytest.raises(IndexError):
            view.line_data(3)
        # the most active unit is the top row of the heatmap
        np.testing.assert_array_equal(view.image.image, values[:, order].T[::-1])
    assert view.image.levels.tolist() == [0.0, 1.0]  # a gate: [0, 1]
    # the panel's value box and the text view's are one setting
    panel = window.explore_panel
    assert panel.quantity_box.currentData() == "f"
    panel.quantity_box.setCurrentIndex(1)
    assert session.selection.quantity == "c" == window.text_view.quantity_box.currentData()
    c = ws.trace.layers[0].directions[0].c
    assert view.image.levels.tolist() == pytest.approx([-np.abs(c).max(), np.abs(c).max()])
    session.selection.set_quantity("h")
    # unit list in the panel: shift-click extends the set

    def click(row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        rect = panel.unit_list.visualItemRect(panel.unit_list.item(row))
        qtbot.mouseClick(panel.unit_list.viewport(), Qt.MouseButton.LeftButton, modifier,
                         rect.center())  # fmt: skip

    click(2)
    assert session.selection.units == (2,)
    click(5, Qt.KeyboardModifier.ShiftModifier)
    assert session.selection.units == (2, 3, 4, 5)
    assert view.line_data(3)[1].shape == (60,)
    # a condition typed in the panel
    panel.expression.setText("h > 0")
    session.selection.set_span(10, 12)
    panel.select_by_expression()
    h = ws.trace.layers[0].directions[0].h
    assert session.selection.units == tuple(np.flatnonzero((h[10:12] > 0).all(0)))
    # the span region follows the model, and dragging it sets the span
    assert view.regions[0].getRegion() == pytest.approx((9.5, 11.5))
    view.regions[0].setRegion((19.5, 29.5))
    view.regions[0].sigRegionChangeFinished.emit(view.regions[0])
    assert session.selection.span == (20, 30)
    # a new sequence: the plots follow its run
    ws.set_sequence(np.random.default_rng(5).normal(size=(80, 3)))
    ws.ensure_trace(wait=True)
    assert view.values.shape[0] == 80
