"""Recurrent parameters of a PyTorch state dict grouped by module path (``torch.state_dict``).

``weight_ih_l{k}[_reverse]`` / ``weight_hh`` / ``bias_*`` / ``weight_hr`` names are grouped by
the module path before them; each group's kind (LSTM, GRU, RNN, or their cells) follows from
the rows of ``weight_ih`` (4H, 3H or H), since a state dict names no module class. AWD-LSTM's
``*_raw`` weights win over the plain copies, and ``_pick`` chooses the one group to show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lstmviz.io.errors import ChoiceRequired, LoadError

if TYPE_CHECKING:
    from lstmviz.io.torch.state_dict import Tensor

_PARAM = re.compile(
    r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)(?:_l(\d+)(_reverse)?)?(_raw)?$"
)
_LSTM_KINDS = ("LSTM", "LSTMCell")
#: Recurrent modules lstmviz runs: the LSTM here, GRU and RNN in ``torch.gru``.
_RUNNABLE = (*_LSTM_KINDS, "GRU", "GRUCell", "RNN", "RNNCell")


@dataclass
class _Group:
    """Recurrent parameters sharing one module path, keyed by (param, layer, reverse)."""

    prefix: str
    params: dict[tuple[str, int | None, bool], str] = field(default_factory=dict)
    kind: str = "recurrent"  # LSTM, LSTMCell, GRU, GRUCell, RNN, RNNCell
    notes: dict[str, str] = field(default_factory=dict)  # tensor name → why it was chosen

    @property
    def layered(self) -> bool:
        return any(layer is not None for (_, layer, _) in self.params)

    @property
    def label(self) -> str:
        return self.prefix or "(top level)"

    @property
    def is_lstm(self) -> bool:
        return self.kind in _LSTM_KINDS

    @property
    def runnable(self) -> bool:
        """An LSTM, GRU or plain RNN (module or cell): lstmviz can show and run it."""
        return self.kind in _RUNNABLE

    def get(self, param: str, layer: int, reverse: bool = False) -> str | None:
        return self.params.get((param, layer if self.layered else None, reverse))

    def not_lstm(self, file: str, tensors: Mapping[str, Tensor]) -> LoadError:
        """Neither an LSTM, a GRU nor a plain RNN: the rows of weight_ih fit none of them."""
        name = self.get("weight_ih", 0) or "weight_ih"
        hh = self.get("weight_hh", 0) or "weight_hh"
        rows = _shape(tensors[name])[0] if name in tensors else "?"
        hidden = _shape(tensors[hh])[-1] if hh in tensors and _shape(tensors[hh]) else "?"
        return LoadError(
            f"{file}: {self.label} is no recurrent module lstmviz knows: {name} has {rows} "
            f"rows for {hh}'s H = {hidden}, not 4H (LSTM), 3H (GRU) or H (RNN); lstmviz "
            "opens PyTorch LSTM, GRU and RNN modules and cells"
        )


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(int(n) for n in t.shape)


def _recurrent_kind(group: _Group, tensors: Mapping[str, Tensor]) -> str:
    """LSTM, GRU or RNN from the rows of ``weight_ih``: 4H, 3H or H."""
    w_ih = _shape(tensors[group.get("weight_ih", 0) or ""])
    w_hh = _shape(tensors[group.get("weight_hh", 0) or ""])
    hr = group.get("weight_hr", 0)
    hidden = _shape(tensors[hr])[-1] if hr else (w_hh[-1] if len(w_hh) == 2 else 0)
    if len(w_ih) != 2 or hidden <= 0:
        return "recurrent"
    kinds = {4 * hidden: "LSTM", 3 * hidden: "GRU", hidden: "RNN"}
    kind = kinds.get(w_ih[0])
    if kind is None:
        return "recurrent"
    return kind if group.layered else kind + "Cell"


def group_recurrent(tensors: Mapping[str, Tensor]) -> list[_Group]:
    """Every module path holding ``weight_ih*`` and ``weight_hh*``, with its kind."""
    groups: dict[str, _Group] = {}
    raws: dict[str, dict[tuple[str, int | None, bool], str]] = {}
    for name in tensors:
        prefix, _, last = name.rpartition(".")
        m = _PARAM.match(last)
        if not m:
            continue
        param, layer, rev, raw = m.group(1), m.group(2), bool(m.group(3)), bool(m.group(4))
        key = (param, None if layer is None else int(layer), rev)
        if raw:
            raws.setdefault(prefix, {})[key] = name
        else:
            groups.setdefault(prefix, _Group(prefix)).params[key] = name
    for prefix, found_raws in raws.items():
        group = groups.setdefault(prefix, _Group(prefix))
        # fastai's WeightDropout keeps the raw weight on the wrapper, the LSTM at .module
        inner = groups.get(f"{prefix}.module" if prefix else "module")
        for key, name in found_raws.items():
            _take_raw(group, key, name, "")
            if inner is not None:
                _take_raw(inner, key, name, ", kept on the WeightDropout wrapper")
    found = [g for g in groups.values() if g.get("weight_ih", 0) and g.get("weight_hh", 0)]
    for g in found:
        g.kind = _recurrent_kind(g, tensors)
    return found


def _take_raw(group: _Group, key: tuple[str, int | None, bool], raw: str, where: str) -> None:
    """AWD-LSTM weight drop keeps the true weight as ``*_raw``; in eval mode the LSTM runs it
    (dropout is the identity), while a plain copy beside it may be a dropped-out one saved
    after a training step. So ``_raw`` wins, and the note says so."""
    plain = group.params.get(key)
    group.params[key] = raw
    if plain is None:
        param = raw.rpartition(".")[2].removesuffix("_raw")
        group.notes[raw] = f"{raw} used for {param} (AWD-LSTM weight drop{where}: eval runs it)"
    else:
        group.notes[raw] = (
            f"{raw}{where} used instead of {plain} (AWD-LSTM weight drop: eval runs the _raw "
            "weight; the plain one may be a dropped-out copy)"
        )


def _pick(
    groups: Sequence[_Group], prefix: str | None, file: str, tensors: Mapping[str, Tensor]
) -> _Group:
    """The one recurrent module to show: the only one, or the one ``prefix`` names."""
    lstms = [g for g in groups if g.runnable]
    choices = tuple(g.prefix for g in lstms)
    all_lstm = all(g.is_lstm for g in lstms)  # an all-LSTM file's messages read as before
    if prefix is not None:
        wanted = prefix.strip().rstrip(".")
        chosen = next((g for g in groups if g.prefix == wanted), None)
        if chosen is None:
            raise ChoiceRequired(
                f"{file}: no {'LSTM' if all_lstm else 'recurrent module'} under prefix "
                f"'{wanted}'; choose one of "
                f"{', '.join(g.label for g in lstms) or '(none)'}",
                option="prefix",
                choices=choices,
            )
        if not chosen.runnable:
            raise chosen.not_lstm(file, tensors)
        return chosen
    if not lstms:
        raise groups[0].not_lstm(file, tensors)
    if len(lstms) > 1:
        what = "LSTMs" if all_lstm else "recurrent modules"
        raise ChoiceRequired(
            f"{file}: holds {len(lstms)} {what} ({', '.join(g.label for g in lstms)}); "
            "pick one with prefix=",
            option="prefix",
            choices=choices,
        )
    return lstms[0]
