"""Reparametrized LSTM weights in a state dict, computed as torch does in eval mode.

A module with weight normalisation or spectral normalisation stores the pieces, not the
weight (``torch/nn/utils/weight_norm.py``, ``spectral_norm.py``, ``parametrizations.py``):

- ``weight_norm`` (old hooks): ``<p>_g``, ``<p>_v``; ``parametrizations.weight_norm``:
  ``parametrizations.<p>.original0`` (g) and ``original1`` (v). ``w = v · g / ‖v‖`` with the norm
  over every axis except ``dim`` (``torch._weight_norm``/``norm_except_dim``; default dim 0,
  ``dim=None`` is one norm over the whole tensor). g keeps v's size on ``dim`` and 1 elsewhere
  (a 0-d g for the whole-tensor norm), so ``dim`` is read from g's shape.
- ``spectral_norm`` (old hooks): ``<p>_orig``, ``<p>_u``, ``<p>_v``; ``parametrizations
  .spectral_norm``: ``parametrizations.<p>.original`` and ``parametrizations.<p>.0._u``/``_v``.
  In eval mode no power iteration runs: ``w = orig / σ``, ``σ = u · (W v)`` with ``W`` = orig
  with ``dim`` first, flattened to a matrix (dim from u's length). The old hooks normalise a
  1-D weight the same way; the new parametrization keeps no u/v for it (``orig / ‖orig‖``),
  which is indistinguishable from any other parametrization and so refused.

Any other parametrization is a function lstmviz cannot know: refused, naming
``remove_parametrizations``. Only the LSTM parameter names are resolved here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np

from lstmviz.io.errors import LoadError

_P = r"(?:weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)(?:_l\d+(?:_reverse)?)?"
_NEW = re.compile(rf"^(?:(.*)\.)?parametrizations\.({_P})\.(.+)$")
_OLD = re.compile(rf"^(?:(.*)\.)?({_P})_(g|v|orig|u)$")
_REMOVE = (
    "call torch.nn.utils.parametrize.remove_parametrizations(module, {p!r}) (or "
    "remove_weight_norm / remove_spectral_norm) before saving the state_dict"
)

Read = Callable[[str], np.ndarray]


def _weight_norm(g: np.ndarray, v: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """``torch._weight_norm(v, g, dim)`` with ``dim`` read from g's shape."""
    v64 = v.astype(np.float64)
    if g.ndim == 0:
        dims, text = None, "one norm over the whole tensor"
    else:
        fits = [
            k
            for k in range(v.ndim)
            if g.shape == tuple(n if j == k else 1 for j, n in enumerate(v.shape))
        ]
        if g.ndim != v.ndim or not fits:
            raise LoadError(
                f"{where}: weight_norm magnitude g has shape {g.shape}, which does not fit "
                f"v {v.shape}; the state dict is damaged"
            )
        dim = fits[0]
        dims, text = tuple(j for j in range(v.ndim) if j != dim), f"dim {dim}"
    norm = np.sqrt(np.sum(v64 * v64, axis=dims, keepdims=dims is not None))
    with np.errstate(all="ignore"):  # a zero v gives NaN, as in torch
        w = v64 * (g.astype(np.float64) / norm)
    return w.astype(v.dtype), text


def _spectral_norm(
    orig: np.ndarray, u: np.ndarray, v: np.ndarray, where: str
) -> tuple[np.ndarray, str]:
    """Eval-mode spectral norm: ``orig / (u · W v)``; ``dim`` from the lengths of u and v."""
    w64 = orig.astype(np.float64)
    if orig.ndim == 0 or u.ndim != 1 or v.ndim != 1:
        raise LoadError(f"{where}: spectral_norm lacks its u/v vectors; the state dict is damaged")
    dims = [k for k in range(orig.ndim) if orig.shape[k] == u.size and orig.size == u.size * v.size]
    if not dims:
        raise LoadError(
            f"{where}: spectral_norm u {u.shape} and v {v.shape} do not fit the weight "
            f"{orig.shape}; the state dict is damaged"
        )
    dim = dims[0]
    mat = np.moveaxis(w64, dim, 0).reshape(orig.shape[dim], -1)
    sigma = float(np.dot(u.astype(np.float64), mat @ v.astype(np.float64)))
    with np.errstate(all="ignore"):
        return (w64 / sigma).astype(orig.dtype), f"dim {dim}, σ = {sigma:.6g}"


def _new_style(
    prefix: str, param: str, parts: dict[str, str], read: Read, file: str
) -> tuple[np.ndarray, str]:
    """``parametrizations.<param>.*``: weight_norm or spectral_norm, else refused."""
    full = f"{prefix}.{param}" if prefix else param
    where = f"{file}: {full}"
    keys = set(parts)
    if keys == {"original0", "original1"}:
        w, how = _weight_norm(read(parts["original0"]), read(parts["original1"]), where)
        return w, (
            f"{param} = g·v/‖v‖ ({how}) from parametrizations.{param}.original0/original1 "
            "(assumed torch.nn.utils.parametrizations.weight_norm, the built-in with two "
            "originals)"
        )
    if keys == {"original", "0._u", "0._v"}:
        u, v = read(parts["0._u"]), read(parts["0._v"])
        w, how = _spectral_norm(read(parts["original"]), u, v, where)
        return w, (
            f"{param} = original/σ ({how}) from parametrizations.{param} "
            "(torch.nn.utils.parametrizations.spectral_norm, eval mode)"
        )
    raise _unknown(where, param, keys)


def _unknown(where: str, param: str, keys: set[str]) -> LoadError:
    listed = ", ".join(f"parametrizations.{param}.{k}" for k in sorted(keys))
    return LoadError(
        f"{where} is parametrized ({listed}), and lstmviz computes only weight_norm and "
        f"spectral_norm; {_REMOVE.format(p=param)}"
    )


def resolve_parametrized(
    tensors: Mapping[str, object],
    read: Read,
    file: str,
    charge: Callable[[int, str], None] | None = None,
) -> tuple[dict[str, object], dict[str, str]]:
    """``tensors`` with each reparametrized LSTM weight computed under its plain name (placed
    where its first piece was), and a transform text per computed name.

    Every computed weight is new memory (float64 while it is computed), and the pieces of 30
    layers may all be views of one storage (16 MB made 919 MB): ``charge`` is told the bytes
    its pieces take before it is computed (the float64 work is one weight at a time)."""

    def read_counted(name: str, plain: str) -> np.ndarray:
        arr = read(name)
        if charge is not None:
            charge(int(arr.nbytes), f"{plain} computed from its parametrization")
        return arr

    new: dict[tuple[str, str], dict[str, str]] = {}
    old: dict[tuple[str, str], dict[str, str]] = {}
    for name in tensors:
        if m := _NEW.match(name):
            new.setdefault((m.group(1) or "", m.group(2)), {})[m.group(3)] = name
        elif m := _OLD.match(name):
            old.setdefault((m.group(1) or "", m.group(2)), {})[m.group(3)] = name
    computed: dict[str, tuple[np.ndarray, str, list[str]]] = {}
    for (prefix, param), parts in new.items():
        plain = f"{prefix}.{param}" if prefix else param
        counted: Read = lambda n, plain=plain: read_counted(n, plain)  # noqa: E731
        w, text = _new_style(prefix, param, parts, counted, file)
        computed[plain] = (w, text, list(parts.values()))
    for (prefix, param), parts in old.items():
        plain = f"{prefix}.{param}" if prefix else param
        if plain in tensors or plain in computed:
            continue  # the weight itself is stored (spectral_norm before torch 1.1 kept it)
        where = f"{file}: {plain}"
        if set(parts) == {"g", "v"}:
            g, v = read_counted(parts["g"], plain), read_counted(parts["v"], plain)
            w, how = _weight_norm(g, v, where)
            text = f"{param} = g·v/‖v‖ ({how}) from {param}_g/{param}_v (torch weight_norm)"
        elif {"orig", "u", "v"} <= set(parts):
            orig, u = read_counted(parts["orig"], plain), read_counted(parts["u"], plain)
            w, how = _spectral_norm(orig, u, read_counted(parts["v"], plain), where)
            text = f"{param} = {param}_orig/σ ({how}) (torch spectral_norm, eval mode)"
        else:
            continue  # e.g. a lone *_v: not a normalisation torch writes; listed as a tensor
        computed[plain] = (w, text, list(parts.values()))
    if not computed:
        return dict(tensors), {}
    first = {pieces[0]: plain for plain, (_, _, pieces) in computed.items()}
    pieces = {n for _, _, ps in computed.values() for n in ps}
    out: dict[str, object] = {}
    for name, t in tensors.items():
        if name in first:
            out[first[name]] = computed[first[name]][0]
        elif name not in pieces:
            out[name] = t
    return out, {plain: text for plain, (_, text, _) in computed.items()}
