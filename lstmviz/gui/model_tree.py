"""The model tree: layers, directions, and each direction's stored variables with shapes.

Non-LSTM layers from ``model.all_layers`` are listed greyed: visible for orientation, never
selectable, because lstmviz only runs the LSTM stack.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from lstmviz.core.model import LayerInfo, LSTMLayer, LSTMModel

ROLE = Qt.ItemDataRole.UserRole
GREY_RGB = (150, 150, 150)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


class ModelTree(QTreeWidget):
    """Emits ``direction_selected(layer, direction)`` when any item of an LSTM layer is picked."""

    direction_selected = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Name", "Shape / detail"])
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        # Stored names are long paths whose end says what they are (…/kernel, …/bias,
        # …/vars/0): elided on the left, the end stays (in the middle, "layers/lst…ell/vars/0"
        # read as neither); every name is whole in its tooltip.
        self.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.currentItemChanged.connect(self._on_current_item_changed)
        self._direction_items: dict[tuple[int, int], QTreeWidgetItem] = {}

    def set_model(self, model: LSTMModel | None) -> None:
        self.blockSignals(True)
        self.clear()
        self._direction_items = {}
        if model is not None:
            for item in self._layer_items(model):
                _full_text_tooltips(item)
                self.addTopLevelItem(item)
            self.expandAll()
        self._fit_columns()
        self.blockSignals(False)

    def _fit_columns(self) -> None:
        """Shapes whole when possible: names give way first (they elide in the middle and
        their tooltips are whole), down to 190 px, and never past the dock's edge: in a
        175 px dock (1024 × 700) a 190 px column hid the ends that tell 'vars/0' from 'vars/1'."""
        self.resizeColumnToContents(0)
        self.resizeColumnToContents(1)
        names, details = self.columnWidth(0), self.columnWidth(1)
        visible = self.viewport().width()
        self.setColumnWidth(0, min(names, max(min(190, visible), visible - details)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def select_direction(self, layer: int, direction: int) -> None:
        item = self._direction_items.get((layer, direction))
        if item is not None and item is not self.currentItem():
            self.setCurrentItem(item)

    def texts(self) -> list[str]:
        """Every item's first-column text, depth first (for tests and logs)."""
        out: list[str] = []

        def walk(item: QTreeWidgetItem, depth: int) -> None:
            out.append("  " * depth + item.text(0) + (f"  {item.text(1)}" if item.text(1) else ""))
            for i in range(item.childCount()):
                walk(item.child(i), depth + 1)

        for i in range(self.topLevelItemCount()):
            walk(self.topLevelItem(i), 0)
        return out

    # ------------------------------------------------------------------ building
    def _layer_items(self, model: LSTMModel) -> list[QTreeWidgetItem]:
        """File order: each ``all_layers`` entry is matched to a loaded LSTM layer by name;
        anything else (Dense, Embedding, an LSTM not chosen) is listed greyed."""
        unmatched = dict(enumerate(model.layers))
        runs = {d.name: "head: run" for d in model.head}
        runs.update({t.name: "run between recurrent layers" for layer in model.layers
                     for t in layer.before})  # fmt: skip
        items: list[QTreeWidgetItem] = []
        for info in model.all_layers:
            ks = _match(info, unmatched) if info.is_lstm else []
            if not ks and info.is_lstm and _part_of_loaded(info, model):
                continue  # e.g. TF1's fw and bw cells: two entries, one bidirectional layer
            if not ks:
                items.append(
                    self._other_item(info, "" if info.is_lstm else runs.get(info.name, ""))
                )
            # one entry may hold several layers (PyTorch nn.LSTM(num_layers=2) is one module)
            items.extend(self._lstm_item(k, model.layers[k]) for k in ks)
        for k in sorted(unmatched):  # LSTM layers all_layers did not mention
            items.append(self._lstm_item(k, model.layers[k]))
        return items

    def _lstm_item(self, k: int, layer: LSTMLayer) -> QTreeWidgetItem:
        cell = layer.cell.name  # the cell kind, when the file's class name does not say it
        kind = layer.kind if cell in layer.kind else f"{layer.kind} ({cell} cell)"
        kind += f", bidirectional ({layer.merge_mode.value})" if layer.bidirectional else ""
        top = QTreeWidgetItem(
            [f"{k}: {layer.name}", f"{kind}  {layer.input_size} → {layer.output_size}"]
        )
        top.setData(0, ROLE, (k, 0))
        top.setToolTip(0, f"{k}: {layer.name} · {layer.n_params:,} parameters")
        for d, w in enumerate(layer.directions):
            name = layer.direction_label(d)
            item = QTreeWidgetItem([name, f"H = {w.hidden_size}, D = {w.input_size}"])
            item.setData(0, ROLE, (k, d))
            self._direction_items[(k, d)] = item
            top.addChild(item)
            stored = w.provenance.stored
            for t in stored:
                extra = f"  rows {t.offset}+ → {t.role}" if t.offset else f"  → {t.role}"
                child = QTreeWidgetItem([t.name, _shape(t.shape) + extra])
                child.setData(0, ROLE, (k, d))
                child.setToolTip(
                    0,
                    f"{t.name} {_shape(t.shape)} {t.dtype}"
                    + (", stored transposed" if t.transposed else ""),
                )
                item.addChild(child)
            if not stored:
                for role in w.array_fields:  # the direction's own arrays (b_x, b_h for a GRU)
                    if role.endswith("0"):
                        continue  # h0, c0: initial states, not weights
                    a = getattr(w, role)
                    if a is not None:
                        child = QTreeWidgetItem([role, _shape(a.shape)])
                        child.setData(0, ROLE, (k, d))
                        item.addChild(child)
        return top

    def _other_item(self, info: LayerInfo, run_as: str = "") -> QTreeWidgetItem:
        """A layer lstmviz does not step through; ``run_as`` says how ``run`` still applies it
        (the dense head after the last LSTM, or a layer between two LSTMs)."""
        what = "not loaded" if info.is_lstm else (run_as or "not run")
        item = QTreeWidgetItem([info.name, f"{info.kind} · {what}"])
        if info.is_lstm:
            tip = f"{info.kind}: another recurrent layer in the file (open it with its prefix)"
        elif run_as:
            tip = (
                f"{info.kind}: applied at every step ({run_as}); the debugger's time plots "
                "show the network output it leads to"
            )
        else:
            tip = f"{info.kind}: not a recurrent layer; listed for orientation, not run"
        item.setToolTip(1, tip)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)  # visible, not selectable
        grey = QBrush(QColor(*GREY_RGB))
        if not run_as:  # layers that are run are shown in the normal colour
            for col in (0, 1):
                item.setForeground(col, grey)
        if info.note:
            item.setToolTip(0, f"{info.name}: {info.note}")
        for name, shape in info.weights:
            child = QTreeWidgetItem([name, _shape(shape)])
            child.setFlags(Qt.ItemFlag.ItemIsEnabled)
            if not run_as:
                for col in (0, 1):
                    child.setForeground(col, grey)
            item.addChild(child)
        return item

    # ------------------------------------------------------------------ slots
    def _on_current_item_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        data = current.data(0, ROLE) if current is not None else None
        if data is not None:
            self.direction_selected.emit(int(data[0]), int(data[1]))


def _match(info: LayerInfo, unmatched: dict[int, LSTMLayer]) -> list[int]:
    """The loaded layers ``info`` describes: same name, or sharing stored weight names."""
    names = {n for n, _ in info.weights}
    found = []
    for k, layer in list(unmatched.items()):
        stored = {t.name for w in layer.directions for t in w.provenance.stored}
        if layer.name == info.name or names & stored:
            del unmatched[k]
            found.append(k)
    return found


def _part_of_loaded(info: LayerInfo, model: LSTMModel) -> bool:
    """True when every weight ``info`` lists is already shown under a loaded layer."""
    names = {n for n, _ in info.weights}
    stored = {
        t.name for layer in model.layers for w in layer.directions for t in w.provenance.stored
    }
    return bool(names) and names <= stored


def _full_text_tooltips(item: QTreeWidgetItem) -> None:
    """Long names elide in a narrow dock; hovering shows them whole."""
    for col in (0, 1):
        if not item.toolTip(col):
            item.setToolTip(col, item.text(col))
    for i in range(item.childCount()):
        _full_text_tooltips(item.child(i))
