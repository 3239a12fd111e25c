"""Select & Match: a span and a threshold pick the units that stay on in it (LSTMVis'
hypothesis), the unit set is shown and editable, and matching ranks every other range of
the corpus by how well its on-units agree.

The panel turns clicks into ``ExploreSession`` calls and shows its state: the span comes from
a drag in the text view or on the unit-set plots' time axis, the unit list is the session's
``UnitSelection`` (click, shift-click, ctrl-click as in any list), a corpus run is a job with
its progress here and a Cancel button.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from lstmviz.gui.explore_matches import MatchList
from lstmviz.gui.text_view import fill_quantity_box
from lstmviz.gui.unit_set_view import UnitSetView
from lstmviz.workspace import Change, Event, Workspace
from lstmviz.workspace.explore_queries import explore_api
from lstmviz.workspace.explore_session import ExploreSession, Topic
from lstmviz.workspace.unit_selection import Field

SLIDER_STEPS = 100  # the threshold slider in hundredths


class ExplorePanel(QWidget):
    """Select (span, threshold, off before/after, expression), units, plots, match list."""

    def __init__(
        self, workspace: Workspace, session: ExploreSession, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.workspace, self.session = workspace, session
        self.selection = session.selection
        outer = QVBoxLayout(self)
        outer.setContentsMargins(2, 2, 2, 2)

        grid = QGridLayout()
        self.start_box, self.stop_box = QSpinBox(), QSpinBox()
        for box in (self.start_box, self.stop_box):
            box.setRange(0, 10**9)
            box.setKeyboardTracking(False)  # the pair is checked when a box is left, not per key
        self.start_box.editingFinished.connect(lambda: self._on_span_boxes_edited(start=True))
        self.stop_box.editingFinished.connect(lambda: self._on_span_boxes_edited(start=False))
        span_row = QHBoxLayout()
        span_row.addWidget(self.start_box)
        span_row.addWidget(QLabel("to"))
        span_row.addWidget(self.stop_box)
        grid.addWidget(QLabel("Steps"), 1, 0)
        grid.addLayout(span_row, 1, 1)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(-SLIDER_STEPS, SLIDER_STEPS)
        self.threshold_slider.setValue(round(SLIDER_STEPS * explore_api().DEFAULT_THRESHOLD))
        self.threshold_label = QLabel()
        self.threshold_slider.valueChanged.connect(self._on_threshold_slider_changed)
        thr_row = QHBoxLayout()
        thr_row.addWidget(self.threshold_slider, 1)
        thr_row.addWidget(self.threshold_label)
        grid.addWidget(QLabel("Threshold"), 2, 0)
        grid.addLayout(thr_row, 2, 1)
        self.off_before, self.off_after = QSpinBox(), QSpinBox()
        off_row = QHBoxLayout()
        for text, box in (("off before", self.off_before), ("after", self.off_after)):
            box.setRange(0, 1000)
            box.setToolTip("steps just outside the span where the units must be below it")
            off_row.addWidget(QLabel(text))
            off_row.addWidget(box)
        self.select_button = QPushButton("Select units")
        self.select_button.setToolTip("Units at or above the threshold at every step of the span")
        self.select_button.clicked.connect(self.select_units)
        off_row.addStretch(1)
        grid.addLayout(off_row, 3, 1)
        # the button on a row of its own: beside the boxes it was cut off in a docked panel
        grid.addWidget(self.select_button, 4, 1, Qt.AlignmentFlag.AlignRight)
        self.quantity_box = QComboBox()
        fill_quantity_box(self.quantity_box, workspace, self.selection.quantity)
        self.quantity_box.setToolTip("What the units are selected, plotted and matched by")
        self.quantity_box.currentIndexChanged.connect(
            lambda k: self.selection.set_quantity(self.quantity_box.itemData(k))
        )
        grid.addWidget(QLabel("Value"), 0, 0)
        grid.addWidget(self.quantity_box, 0, 1)
        self.expression = QLineEdit()
        self.expression.setPlaceholderText("or a condition: h > 0.5, |c| > 2 in units 0-31 …")
        self.expression.returnPressed.connect(self.select_by_expression)
        grid.addWidget(QLabel("Condition"), 5, 0)
        grid.addWidget(self.expression, 5, 1)
        outer.addLayout(grid)

        split = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        tl = QHBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        self.unit_list = QListWidget()
        self.unit_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.unit_list.setMaximumWidth(80)
        self.unit_list.setToolTip("The unit set: click, shift-click, ctrl-click")
        self.unit_list.itemSelectionChanged.connect(self._on_unit_list_selection_changed)
        tl.addWidget(self.unit_list)
        self.unit_set_view = UnitSetView(workspace, session)
        tl.addWidget(self.unit_set_view, 1)
        split.addWidget(top)

        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        match_row = QHBoxLayout()
        self.method_box = QComboBox()
        self.method_box.addItem("on-set overlap", "overlap")
        self.method_box.addItem("cosine of values", "cosine")
        match_row.addWidget(self.method_box)
        self.match_button = QPushButton("Match in corpus")
        self.match_button.clicked.connect(self.run_match)
        match_row.addWidget(self.match_button)
        bl.addLayout(match_row)
        progress_row = QHBoxLayout()  # a row of its own: the panel stays narrow when docked
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        progress_row.addWidget(self.progress, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(session.cancel_query)
        progress_row.addWidget(self.cancel_button)
        bl.addLayout(progress_row)
        self.where = QLabel()
        self.where.setWordWrap(True)
        bl.addWidget(self.where)
        self.matches = MatchList(session)
        bl.addWidget(self.matches, 1)
        split.addWidget(bottom)
        split.setSizes([300, 300])
        self.unit_set_view.setMinimumHeight(160)
        self.matches.setMinimumHeight(120)
        outer.addWidget(split, 1)

        self.selection.subscribe(self._on_selection_field)
        workspace.subscribe((Change.MODEL, Change.SELECTION), self._update_unit_list)
        session.subscribe((Topic.PROGRESS,), self._update_progress)
        session.subscribe((Topic.CORPUS, Topic.MATCHES), self._update_where)
        self._on_threshold_slider_changed(self.threshold_slider.value())
        self._update_unit_list(None)
        self._update_where(None)
        self._on_selection_field(Field.SPAN)  # a span dragged before the panel was built

    # -- state → widgets -----------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return self.threshold_slider.value() / SLIDER_STEPS

    def _on_selection_field(self, field: Field) -> None:
        if field is Field.SPAN and self.selection.span is not None:
            start, stop = self.selection.span
            self.start_box.setValue(start)
            self.stop_box.setValue(stop - 1)
        elif field is Field.UNITS:
            self._show_units()
        elif field is Field.QUANTITY:
            fill_quantity_box(self.quantity_box, self.workspace, self.selection.quantity)

    def _update_unit_list(self, _event: Event | None) -> None:
        """One row per unit of the selected layer/direction (rebuilt only when that changes)."""
        model = self.workspace.model
        fill_quantity_box(self.quantity_box, self.workspace, self.selection.quantity)
        n = 0
        if model is not None:
            s = self.workspace.selection
            n = model.layers[s.layer].directions[s.direction].hidden_size
        if self.unit_list.count() != n:
            self.unit_list.blockSignals(True)
            self.unit_list.clear()
            for u in range(n):
                item = QListWidgetItem(f"unit {u}")
                item.setData(Qt.ItemDataRole.UserRole, u)
                self.unit_list.addItem(item)
            self.unit_list.blockSignals(False)
            self.selection.clamp(n)
        self._show_units()

    def _show_units(self) -> None:
        units = set(self.selection.units)
        self.unit_list.blockSignals(True)
        for row in range(self.unit_list.count()):
            self.unit_list.item(row).setSelected(row in units)
        self.unit_list.blockSignals(False)
        if units:
            self.unit_list.scrollToItem(self.unit_list.item(min(units)))

    def _update_progress(self, _topic: Topic) -> None:
        p = self.session.progress
        self.progress.setVisible(p is not None)
        self.cancel_button.setVisible(p is not None)
        self.match_button.setEnabled(p is None)
        if p is not None:
            self.progress.setValue(int(p * 100))

    def _update_where(self, _topic: Topic | None) -> None:
        s = self.session
        if s.corpus is not None:
            n = len(s.corpus.documents)
            where = f"Corpus: {s.corpus_name} ({s.corpus.n_tokens:,} tokens, {n:,} documents)"
        else:
            where = "No corpus open (File ▸ Open corpus…): matches are searched in this sequence"
        if s.matches:
            where += f" — {len(s.matches)} matches"
        self.where.setText(where)

    # -- user actions --------------------------------------------------------------------------
    def _on_threshold_slider_changed(self, value: int) -> None:
        self.threshold_label.setText(f"{value / SLIDER_STEPS:+.2f}")

    def _on_span_boxes_edited(self, start: bool = True) -> None:
        """The pair is made valid when one box is left: the box just edited keeps its value
        and the other follows (start 10 typed while "to" is 0 selects 10 to 10, not 1 to 9)."""
        lo, hi = self.start_box.value(), self.stop_box.value()
        if lo > hi:
            lo, hi = (lo, lo) if start else (hi, hi)
        self.selection.set_span(lo, hi + 1)
        self._on_selection_field(Field.SPAN)  # the boxes show the pair kept

    def _on_unit_list_selection_changed(self) -> None:
        rows = [self.unit_list.row(item) for item in self.unit_list.selectedItems()]
        self.selection.set_units(rows)

    def select_units(self) -> None:
        """Units on throughout the span (and off around it as asked): the unit set."""
        span = self.selection.span
        if span is None:
            self.session.fail("Select a range first: drag over the text, or set Steps")
            return
        x = self.workspace.sequence
        stop = min(span[1], 0 if x is None else len(x))
        self.session.select_units(
            span[0], stop, self.threshold,
            off_before=self.off_before.value(), off_after=self.off_after.value(),
        )  # fmt: skip

    def select_by_expression(self) -> None:
        """Units for which the condition holds throughout the span (or at the current step)."""
        ws = self.workspace
        if ws.trace is None:
            return
        span = self.selection.span
        steps = range(*span) if span is not None else [ws.step]
        s = ws.selection
        try:
            self.selection.by_expression(ws.trace, s.layer, s.direction, self.expression.text(),
                                         steps)  # fmt: skip
        except ValueError as exc:
            self.session.fail(str(exc))

    def run_match(self) -> None:
        self.session.run_query(
            self.selection.units, method=self.method_box.currentData(), threshold=self.threshold
        )
