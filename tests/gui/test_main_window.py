"""The main window driven like a user: open, drop, fail, choose, navigate; screenshots saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_factories import keras_like, torch_like
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialog

from lstmviz.gui.choice_dialog import ChoiceDialog
from lstmviz.gui.settings import AppSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TORCH_PLAIN = FIXTURES / "torch" / "plain.pt"
TORCH_TWO = FIXTURES / "torch" / "two_lstms.pt"
TF1_BASIC = FIXTURES / "tf1" / "basic"


def drop(window, path: Path) -> bool:
    """Drag ``path`` over the window and drop it; returns whether the drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    centre = window.rect().center()
    enter = QDragEnterEvent(
        centre,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    event = QDropEvent(
        QPointF(centre),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, event)
    return enter.isAccepted()


def test_tree_lists_layers_directions_variables_and_greys_other_layers(make_main_window):
    window = make_main_window()
    model, _ = keras_like(D=3, H=2)
    window.set_model(model)
    assert window.tree.texts() == [
        "0: lstm  LSTM  3 → 2",
        "  forward  H = 2, D = 3",
        "    layers/lstm/cell/vars/0  (3, 8)  → W_x",
        "    layers/lstm/cell/vars/1  (2, 8)  → W_h",
        "    layers/lstm/cell/vars/2  (8,)  → b",
        "dense  Dense · not run",
        "  kernel  (2, 1)",
        "  bias  (1,)",
    ]
    dense = window.tree.topLevelItem(1)
    assert not dense.flags() & Qt.ItemFlag.ItemIsSelectable
    assert dense.foreground(0).color().lightness() > 120  # greyed
    status = window.status_label.text()
    assert "Keras 3.15.1" in status and "stored i,f,c,o transposed; shown i,f,g,o" in status


def test_selecting_a_direction_in_the_tree_updates_every_view(make_main_window):
    window = make_main_window()
    window.set_model(torch_like(D=3, H=4, layers=2, bidirectional=True))
    window.tree.select_direction(1, 1)
    assert window.selection == (1, 1)
    w = window.model.layers[1].directions[1]
    np.testing.assert_array_equal(
        window.weights_view.heatmap("W_x").image.image, w.W_x.astype(np.float32)
    )
    assert "backward" in window.weights_view.caption.text()
    assert any("lstm.weight_ih_l1_reverse" in line for line in window.shapes_panel.lines)
    assert window.stats_panel.stats[0].count == w.W_x[:4].size


def test_open_real_file_async_then_bad_file_keeps_previous_model(
    make_main_window, qtbot, tmp_path, save_artifact
):
    window = make_main_window()
    with qtbot.waitSignal(window.model_loaded, timeout=10000) as loaded:
        assert window.open_model(TORCH_PLAIN) is None  # returns at once; the worker loads
        assert window.busy.isVisible() and "Loading plain.pt" in window.status_label.text()
    assert window.busy.isHidden()
    good = loaded.args[0]
    assert window.model is good and window.model_path == str(TORCH_PLAIN)
    bad = tmp_path / "notes.h5"
    bad.write_text("this is not a weights file\n" * 20)
    with qtbot.waitSignal(window.load_failed, timeout=10000) as failed:
        window.open_model(bad)
    message = failed.args[0]
    assert message.startswith("notes.h5:")
    assert window.error_box.isVisible() and window.error_box.text() == message
    assert (
        message in window.status_label.text()
        and "still showing plain.pt" in window.status_label.text()
    )
    assert window.model is good  # previous model still loaded and usable
    window.tree.select_direction(0, 0)
    assert "weight_ih_l0[" in window.weights_view.tooltip_at("W_x", 0, 0)
    save_artifact(window, "main_window_error")


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_drop_a_file_and_a_checkpoint_folder(make_main_window, qtbot):
    window = make_main_window()
    with qtbot.waitSignal(window.model_loaded, timeout=10000):
        assert drop(window, TORCH_PLAIN)
    assert window.model.source_path.endswith("plain.pt")
    with qtbot.waitSignal(window.model_loaded, timeout=10000):
        assert drop(window, TF1_BASIC)  # a TF1 checkpoint folder
    assert window.tree.texts()[0].startswith("0: rnn/basic_lstm_cell")
    window.weights_view.set_stored_order(True)
    kernel = window.weights_view.panels()[0]
    assert kernel.key == "rnn/basic_lstm_cell/kernel" and kernel.data.shape == (9, 24)
    assert kernel.block_labels == ("i", "j (= g)", "f", "o")


def test_choice_required_asks_and_reloads_with_the_choice(make_main_window, qtbot, monkeypatch):
    asked = []

    def pick_decoder(dialog: ChoiceDialog) -> int:
        asked.append((dialog.option, dialog.choices))
        dialog.select("decoder")
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ChoiceDialog, "exec", pick_decoder)
    window = make_main_window()
    with qtbot.waitSignal(window.model_loaded, timeout=10000):
        window.open_model(TORCH_TWO)
    assert asked == [("prefix", ("encoder", "decoder"))]
    assert window.model.layers[0].name == "decoder"
    texts = window.tree.texts()
    assert any(t.startswith("encoder  LSTM · not loaded") for t in texts)


def test_choice_cancelled_keeps_previous_model(make_main_window, monkeypatch):
    monkeypatch.setattr(ChoiceDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    window = make_main_window()
    previous = window.open_model(TORCH_PLAIN, wait=True)
    assert previous is not None
    assert window.open_model(TORCH_TWO, wait=True) is None
    assert window.model is previous and "prefix" in window.last_error


def test_recent_files_persist_in_isolated_settings(make_main_window, tmp_path, qtbot):
    settings = AppSettings.at(tmp_path / "recent.ini")
    window = make_main_window(settings=settings)
    window.open_model(TORCH_PLAIN, wait=True)
    window.open_model(TF1_BASIC, wait=True)
    assert settings.recent_files() == [str(TF1_BASIC.resolve()), str(TORCH_PLAIN.resolve())]
    again = make_main_window(settings=AppSettings.at(tmp_path / "recent.ini"))
    files = [a for a in again.recent_menu.actions() if a.data()]
    assert [a.data() for a in files] == settings.recent_files()
    assert files[0].text().startswith("&1 basic") and files[0].shortcut().toString()
    with qtbot.waitSignal(again.model_loaded, timeout=10_000) as loaded:
        files[1].trigger()  # Open recent ▸ 2 plain.pt
    assert loaded.args[0].source_path.endswith("plain.pt")
    clear = next(a for a in again.recent_menu.actions() if a.text() == "Clear list")
    clear.trigger()
    assert again.settings.recent_files() == [] and not again.recent_menu.isEnabled()


def test_debugger_link_shows_the_unit_in_the_weights_view(make_main_window):
    window = make_main_window()
    window.set_model(torch_like(D=3, H=4, layers=2, bidirectional=True))
    window.tabs.setCurrentIndex(1)
    window.debug_panel.weights_link_requested.emit(1, 1, "o", 2)
    assert window.tabs.currentWidget() is window.weights_view
    assert window.selection == (1, 1)
    for key in ("W_x", "W_h", "b"):
        rects = window.weights_view.heatmap(key).highlighted_rects()
        assert sorted(r.top() for r in rects) == [2, 6, 10, 14]
    assert "unit 2" in window.weights_view.link_label.text()
    window.weights_view.set_stored_order(True)  # the linked unit stays outlined
    assert sorted(r.top() for r in window.weights_view.active[0].highlighted_rects()) == [
        2,
        6,
        10,
        14,
    ]


def test_sequence_and_step_reach_the_debugger(make_main_window):
    window = make_main_window()
    window.open_model(TORCH_PLAIN, wait=True)
    window.set_sequence(np.random.default_rng(0).normal(size=(7, 3)))
    window.go_to_step(4)
    assert window.debug_panel.current_step == 4


def test_screenshots_of_each_view(make_main_window, save_artifact):
    window = make_main_window()
    window.open_model(TF1_BASIC, wait=True)
    save_artifact(window, "weights_canonical_tf1")
    window.weights_view.set_stored_order(True)
    save_artifact(window, "weights_stored_tf1")
    window.side_tabs.setCurrentWidget(window.stats_panel)
    save_artifact(window, "statistics_tf1")
    window.side_tabs.setCurrentWidget(window.shapes_panel)
    save_artifact(window, "shapes_explained_tf1")
    window.set_model(torch_like(D=8, H=32, layers=2, bidirectional=True))
    window.weights_view.set_stored_order(False)
    window.side_tabs.setCurrentWidget(window.details)
    hover_pos = window.weights_view.heatmap("W_h").plot.vb.mapViewToScene(QPointF(7.5, 40.5))
    window.weights_view.graphics.scene().sigMouseMoved.emit(hover_pos)
    save_artifact(window, "weights_hover_torch")


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_sequence_files_open_and_drop_onto_the_debugger(make_main_window, tmp_path, qtbot):
    window = make_main_window()
    window.open_model(TORCH_PLAIN, wait=True)  # D = 3
    good = tmp_path / "walk.csv"
    np.savetxt(good, np.random.default_rng(1).normal(size=(9, 3)), delimiter=",")
    assert window.open_sequence(good)
    assert "walk.csv (9 steps)" in window.status_label.text()
    wrong = tmp_path / "wide.csv"
    np.savetxt(wrong, np.ones((4, 5)), delimiter=",")
    with qtbot.waitSignal(window.load_failed):
        drop(window, wrong)  # a dropped .csv is a sequence, not a model
    assert "wide.csv" in window.last_error and window.model.source_path.endswith("plain.pt")


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")
def test_a_dropped_array_file_is_a_sequence_or_weights_by_what_it_holds(
    make_main_window, tmp_path, qtbot
):
    window = make_main_window()
    window.open_model(TORCH_PLAIN, wait=True)  # D = 3
    x = np.random.default_rng(2).normal(size=(11, 3))
    np.save(tmp_path / "walk.npy", x)
    np.savez(tmp_path / "walk.npz", x=x)
    for name in ("walk.npy", "walk.npz"):
        drop(window, tmp_path / name)  # holds no LSTM, reads as (T, 3): a sequence
        # read in a worker like File ▸ Open (issue 18 item 5): the window paints meanwhile
        qtbot.waitUntil(lambda n=name: f"{n} (11 steps)" in window.status_label.text())
        qtbot.waitUntil(lambda: window.debug_panel.trace is not None)
        np.testing.assert_allclose(window.debug_panel.trace.x, x, rtol=1e-6)
        assert window.model.source_path.endswith("plain.pt")
    weights = FIXTURES / "arrays" / "keras_names.npz"
    with qtbot.waitSignal(window.model_loaded, timeout=10000):
        drop(window, weights)  # LSTM weights: a model, even with a model open
    assert window.model.source_path.endswith("keras_names.npz")
    np.save(tmp_path / "wide.npy", np.ones((4, 5)))
    with qtbot.waitSignal(window.load_failed, timeout=10000):
        drop(window, tmp_path / "wide.npy")  # neither: the reader says why it is no model
    assert "wide.npy" in window.last_error


def test_menu_actions_drive_the_views(make_main_window):
    window = make_main_window()
    window.set_model(keras_like()[0])
    window.stored_action.trigger()  # View ▸ As stored in the file (Ctrl+T)
    assert window.weights_view.stored_order and window.weights_view.stored_button.isChecked()
    window.stored_action.trigger()
    assert not window.weights_view.stored_order
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&View", "&Help"]
    file_items = [a.text() for a in window.menuBar().actions()[0].menu().actions() if a.text()]
    assert file_items[:4] == [
        "&Open model…",
        "Open checkpoint &folder…",
        "Open &sequence…",
        "Open &recent",
    ]


def test_bundled_example_opens_with_its_sequence(make_main_window, save_artifact):
    """What plain ``lstmviz`` does: the trained example and its sine sequence."""
    import argparse

    from lstmviz.gui.app import open_from_args
    from lstmviz.resources import default_model_path

    window = make_main_window()
    args = argparse.Namespace(path=None, sequence=None, layer=1, step=30)
    assert open_from_args(window, args, {})
    assert window.model_path == str(default_model_path())
    assert [layer.hidden_size for layer in window.model.layers] == [24, 24]
    assert window.selection == (1, 0)
    panel = window.debug_panel
    assert panel.trace.x.shape == (120, 1) and panel.current_step == 30
    assert window.tabs.currentIndex() == 1
    save_artifact(window, "example_debugger")


KERAS_BRANCH = Path(__file__).resolve().parents[1] / "fixtures" / "keras" / "tfk221_branch.h5"


def test_keras_branches_are_asked_in_a_window_and_default_headless(make_main_window, monkeypatch):
    """A Keras model with two LSTM chains: the window asks (the user picks 'b'); a headless
    window opens the first chain as a script does, with a note naming layer=."""
    asked = []

    def pick_b(dialog: ChoiceDialog) -> int:
        asked.append((dialog.option, dialog.choices))
        dialog.select("b")
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ChoiceDialog, "exec", pick_b)
    window = make_main_window()
    model = window.open_model(KERAS_BRANCH, wait=True)
    assert asked == [("layer", ("a", "b"))]
    assert model is not None and model.layers[0].name == "b"
    headless = make_main_window()
    headless.interactive = False
    model = headless.open_model(KERAS_BRANCH, wait=True)
    assert model is not None and [layer.name for layer in model.layers] == ["a", "c"]
    assert len(asked) == 1
