"""Bare NumPy arrays (``.npz`` archives, single ``.npy`` files) holding LSTM, GRU or RNN weights.

Nothing is unpickled: every header is parsed by ``numpy.lib.format`` (a literal, not a pickle),
object dtypes are refused before any data is read, and each array's byte count is checked
against the file (or, in a ``.npz``, the member's declared size, itself capped against the
archive's size so that a zip bomb is refused before inflating). The layout is decided in
``array_layouts``, the conversion in ``array_cells``; PyTorch names go through ``state_dict``
like a ``torch.save`` file would.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from dataclasses import replace
from typing import IO

import numpy as np

from lstmviz.core.model import LayerInfo, LSTMModel
from lstmviz.io.arrays import cells, gru_names
from lstmviz.io.arrays import layouts as al
from lstmviz.io.convert import budget_factor
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.io.probe import Probe
from lstmviz.io.registry import Reader
from lstmviz.io.torch.state_dict import model_from_state_dict

NPY_MAGIC = b"\x93NUMPY"
MAX_TOTAL = 2 << 30  # bytes of arrays lstmviz is willing to inflate from one archive
MIN_RATIO_FLOOR = 64 << 20  # archives may always inflate this much (zeros compress 1000:1)
MAX_RATIO = 100  # beyond the floor: inflated bytes per archive byte
MAX_MEMBERS = 4_096  # np.savez of a whole Keras model has hundreds; parsing each costs ~0.1 ms
MAX_DIMS = 32  # weights have 1 to 3 axes; numpy's own limit is 64
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError)


def sniff(probe: Probe) -> bool:
    """An ``.npy`` magic, or a zip whose members (or first local header) are ``*.npy``."""
    if probe.is_dir:
        return False
    head = probe.head
    if head.startswith(NPY_MAGIC):
        return True
    if not probe.is_zip:
        return False
    names = probe.zip_names
    if names:
        return all(n.endswith(".npy") for n in names)
    # A cut-off archive has no central directory; its first local header still names a member.
    first = head[30 : 30 + int.from_bytes(head[26:28], "little")] if len(head) >= 30 else b""
    return first.endswith(b".npy")


def _read_header(fp: IO[bytes], what: str, file: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise ValueError(f"format version {version} (structured dtype with unicode names)")
    except (ValueError, SyntaxError, tokenize.TokenError) as exc:  # the header is a dict literal
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"{file}: {what} has a damaged .npy header ({detail})") from exc
    if dtype.hasobject:
        raise LoadError(
            f"{file}: {what} contains Python objects (dtype {dtype}); lstmviz never unpickles; "
            "save plain float arrays with np.savez"
        )
    if len(shape) > MAX_DIMS:
        raise LoadError(
            f"{file}: {what} has {len(shape)} axes; recurrent weights have at most 3 "
            "(numpy at most 64)"
        )
    if any(not 0 <= n < 2**63 for n in shape):
        dims = ", ".join(str(n) if -(10**12) < n < 10**12 else "(huge)" for n in shape[:8])
        raise LoadError(f"{file}: {what} has an impossible shape ({dims}); the header is damaged")
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes an array of ``shape`` takes (``math.prod`` of at most ``MAX_DIMS`` numbers that
    numpy's header parser already bounded, so this never builds a huge integer)."""
    return math.prod(shape) * dtype.itemsize


def _read_data(
    fp: IO[bytes], shape: tuple[int, ...], fortran: bool, dtype: np.dtype, what: str, file: str
) -> np.ndarray:
    count = math.prod(shape)
    if dtype.itemsize == 0:
        raise LoadError(f"{file}: {what} has dtype {dtype} of zero bytes; expected float arrays")
    raw = fp.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise LoadError(
            f"{file}: {what} {shape} {dtype} needs {count * dtype.itemsize} bytes but only "
            f"{len(raw)} are stored; the file is truncated"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True) if dtype.byteorder not in "=|" else arr


def _load_npy(probe: Probe) -> dict[str, np.ndarray]:
    file = probe.name
    with probe.path.open("rb") as fh:
        shape, fortran, dtype = _read_header(fh, "the array", file)
        if _nbytes(shape, dtype) > probe.size:
            raise LoadError(
                f"{file}: header claims shape {shape} {dtype}, more than the {probe.size}-byte "
                "file holds; the file is truncated or damaged"
            )
        arr = _read_data(fh, shape, fortran, dtype, "the array", file)
    return {probe.path.stem: arr}


RAISE = "if you trust the file, raise the limits with --option budget=4 (budget=4 in the API)"


def _member_limit(probe: Probe, factor: float = 1.0) -> int:
    return int(factor * min(MAX_TOTAL, max(MIN_RATIO_FLOOR, MAX_RATIO * probe.size)))


def _load_npz(probe: Probe, factor: float = 1.0) -> dict[str, np.ndarray]:
    file = probe.name
    try:
        with zipfile.ZipFile(probe.path) as zf:
            infos = zf.infolist()
            if not infos:
                raise LoadError(f"{file}: the .npz archive is empty; {al.NEEDED}")
            if len(infos) > MAX_MEMBERS * factor:
                raise LoadError(
                    f"{file}: the archive has {len(infos)} members; lstmviz reads at most "
                    f"{int(MAX_MEMBERS * factor)} arrays from one .npz; {RAISE}"
                )
            _refuse_duplicates(file, [i.filename for i in infos])
            total, limit = sum(i.file_size for i in infos), _member_limit(probe, factor)
            if total > limit:
                raise LoadError(
                    f"{file}: members would inflate to {total} bytes from a {probe.size}-byte "
                    f"archive (limit {limit}), a possible zip bomb; {RAISE}"
                )
            out: dict[str, np.ndarray] = {}
            for info in infos:
                if not info.filename.endswith(".npy"):
                    raise LoadError(
                        f"{file}: member {info.filename!r} is not a .npy array; expected an "
                        "archive written by np.savez"
                    )
                key = info.filename[: -len(".npy")]
                with zf.open(info) as fp:
                    shape, fortran, dtype = _read_header(fp, key, file)
                    if _nbytes(shape, dtype) > info.file_size:
                        raise LoadError(
                            f"{file}: {key} claims shape {shape} {dtype}, more than its "
                            f"{info.file_size}-byte member; the archive is damaged"
                        )
                    out[key] = _read_data(fp, shape, fortran, dtype, key, file)
            return out
    except LoadError:
        raise
    except ZIP_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(
            f"{file}: the .npz archive is truncated or damaged ({detail}); re-save it with np.savez"
        ) from exc


def _refuse_duplicates(file: str, names: list[str]) -> None:
    """A zip may hold one name twice (zipfile writes it with a warning). ``numpy.load`` then
    reads the last copy while ``unzip`` and other tools see the first: the numbers would
    depend on the program, so lstmviz refuses rather than pick one silently."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise LoadError(
                f"{file}: member {name!r} is stored twice in the archive (numpy would read the "
                "last, other tools the first); re-save it with np.savez"
            )
        seen.add(name)


def read_arrays(probe: Probe, factor: float = 1.0) -> dict[str, np.ndarray]:
    """All arrays of a ``.npy``/``.npz`` file by name, in file order, without unpickling;
    ``factor`` multiplies the ``.npz`` limits (``budget=``)."""
    return _load_npy(probe) if probe.head.startswith(NPY_MAGIC) else _load_npz(probe, factor)


def _choose(
    file: str, arrays: dict[str, np.ndarray], layout: str | None
) -> tuple[str, str, list[cells.LayerSpec] | None]:
    """(layout, how it was decided, specs) — specs None for PyTorch names (state_dict)."""
    items = [cells.Item(k, v) for k, v in arrays.items()]
    floats = [i for i in items if i.array.dtype.kind == "f"]
    by_names = al.layouts_from_names(list(arrays))
    if layout is not None:
        if layout not in cells.LAYOUTS:
            raise LoadError(f"{file}: unknown layout {layout!r}; choose {', '.join(cells.LAYOUTS)}")
        if layout in by_names:
            return layout, "given", _named(layout, items)
        specs = al.specs_from_shapes(layout, floats)
        if specs is None:
            run = al.best_run(layout, floats)
            if run is None:
                raise LoadError(
                    f"{file}: the arrays ({_shapes(floats)}) do not fit layout "
                    f"{al.DESCRIPTIONS[layout]}"
                )
            specs = run.specs
        return layout, "given", specs
    if len(by_names) > 1:
        raise _choice(file, by_names, "names of several layouts", {})
    if by_names:
        return by_names[0], "guessed from names", _named(by_names[0], items)
    if not floats:
        kinds = ", ".join(sorted({str(i.array.dtype) for i in items})) or "nothing"
        raise LoadError(f"{file}: holds no floating-point arrays (found {kinds}); {al.NEEDED}")
    fits = {name: al.specs_from_shapes(name, floats) for name in cells.LAYOUTS}
    fitting = [name for name, specs in fits.items() if specs is not None]
    if len(floats) == 1 and fitting == ["tf1"]:
        raise ChoiceRequired(
            f"{file}: one matrix {floats[0].array.shape} can only be a TF1 kernel [D+H,4H] "
            "without bias; pass layout='tf1' to read it so",
            option="layout",
            choices=("tf1",),
        )
    if len(fitting) > 1:
        raise _choice(file, fitting, f"shapes {_shapes(floats)}", fits)
    if fitting:
        return fitting[0], "guessed from shapes", fits[fitting[0]]
    # Not every array is LSTM weight (Keras get_weights() of a whole model): the longest run.
    runs = {name: al.best_run(name, floats) for name in cells.LAYOUTS}
    found = {name: run for name, run in runs.items() if run is not None}
    if not found:
        gru = _three_gate_matrix(floats)
        if gru is not None:
            item, h = gru
            raise LoadError(
                f"{file}: arrays look like a GRU ({item.name} {item.array.shape}: 3 gate blocks "
                f"of {h}) but fit no GRU layout; expected Keras kernel [D,3H], recurrent_kernel "
                "[H,3H], bias [2,3H] or [3H], or PyTorch [3H,D], [3H,H], [3H], [3H], in order"
            )
        raise LoadError(f"{file}: arrays {_shapes(floats)} fit no LSTM layout; {al.NEEDED}")
    top = max(run.count for run in found.values())
    best = [name for name, run in found.items() if run.count == top]
    if len(best) > 1:
        specs = {name: found[name].specs for name in best}
        raise _choice(file, best, f"runs of {top} arrays among {_shapes(floats)}", specs)
    return best[0], "guessed from shapes", found[best[0]].specs


def _three_gate_matrix(items: list[cells.Item]) -> tuple[cells.Item, int] | None:
    """A recurrent matrix of a GRU — PyTorch/ONNX ``[3H, H]`` or Keras ``[H, 3H]`` — and its
    H, when no LSTM ``[4H, H]`` / ``[H, 4H]`` one is there: arrays that fit no GRU layout (an
    ONNX GRU's ``[dirs, 3H, H]`` squeezed, arrays out of order) are told what would."""
    shapes = [i.array.shape for i in items if i.array.ndim == 2 and min(i.array.shape) > 0]
    if any(max(shape) == 4 * min(shape) for shape in shapes):
        return None
    for item in items:
        a = item.array
        if a.ndim == 2 and min(a.shape) > 0 and max(a.shape) == 3 * min(a.shape):
            return item, min(a.shape)
    return None


def _named(layout: str, items: list[cells.Item]) -> list[cells.LayerSpec] | None:
    if layout == "pytorch":
        return None
    specs, _ = al.specs_from_names(layout, items)
    return specs


def _choice(
    file: str, layouts: list[str], why: str, specs: dict[str, list[cells.LayerSpec] | None]
) -> ChoiceRequired:
    """Ask which layout; each is described as the arrays would read in it (LSTM, GRU or RNN)."""
    options = "; ".join(al.describe(name, specs.get(name)) for name in layouts)
    return ChoiceRequired(
        f"{file}: {why} fit more than one layout: {options}; pass layout= to choose",
        option="layout",
        choices=tuple(layouts),
    )


def _shapes(items: list[cells.Item], room: int = 90) -> str:
    """The first arrays with their shapes, as many as fit ``room`` characters: messages stay
    under 300 characters with their advice whole."""
    parts: list[str] = []
    for item in items[:6]:
        part = f"{item.name[:40]} {tuple(item.array.shape)}"
        if parts and len(", ".join([*parts, part])) > room:
            break
        parts.append(part)
    return ", ".join(parts) + (", ..." if len(parts) < len(items) else "")


def _format_name(probe: Probe) -> str:
    return "NumPy .npy" if probe.head.startswith(NPY_MAGIC) else "NumPy .npz"


def load_arrays(
    probe: Probe,
    layout: str | None = None,
    forget_bias: float | None = None,
    prefix: str | None = None,
    budget: object = 1.0,
    nonlinearity: str | None = None,
) -> LSTMModel:
    """Read the arrays, decide the layout (or use ``layout=``), build the canonical model;
    ``budget`` multiplies the limits a ``.npz`` may inflate to; ``nonlinearity`` is an
    ``nn.RNN``'s (tanh or relu), which arrays never record."""
    file = probe.name
    factor = budget_factor(budget, file)
    if forget_bias is not None:
        try:
            forget_bias = float(forget_bias)
        except (TypeError, ValueError) as exc:
            raise LoadError(f"{file}: forget_bias must be a number, got {forget_bias!r}") from exc
    arrays = read_arrays(probe, factor)
    short = gru_names.torch_names(arrays) if layout in (None, "pytorch") else None
    if short is not None:  # g2p_en-style enc_w_ih...: a PyTorch GRU or RNN cell
        fmt = f"{_format_name(probe)} (layout: pytorch, from names)"
        return gru_names.load(probe, arrays, short, prefix, fmt, nonlinearity)
    chosen, how, specs = _choose(file, arrays, layout)
    source_format = f"{_format_name(probe)} (layout: {chosen}, {how})"
    notes = [f"layout {chosen} {how}"]
    if forget_bias is not None and chosen != "tf1":
        notes.append(
            f"forget_bias={forget_bias} ignored: the {chosen} layout stores the whole bias"
        )
    if specs is None:
        model = model_from_state_dict(
            arrays,
            file=file,
            source_format=source_format,
            source_path=str(probe.path),
            prefix=prefix,
            notes=notes,
            nonlinearity=nonlinearity,
        )
        layers = tuple(
            replace(
                layer,
                directions=tuple(
                    cells.with_settings(d, source_format, "pytorch") for d in layer.directions
                ),
            )
            for layer in model.layers
        )
        return model.replace(layers=layers, framework="PyTorch layout (NumPy arrays)")
    if not specs:
        raise LoadError(
            f"{file}: names suggest {chosen} but no complete recurrent cell was found; {al.NEEDED}"
        )
    fb = forget_bias if chosen == "tf1" else None
    ctx = cells.Context(file, source_format, fb, nonlinearity)
    kinds = list(dict.fromkeys(al.cell_kind(chosen, c) for spec in specs for c in spec.cells))
    what = kinds[0] if len(kinds) == 1 else "recurrent layer"  # "the GRU stack", "not a GRU"
    used = {item.name for spec in specs for cell in spec.cells for item in cell.values()}
    if how != "guessed from names":
        notes.extend(al.doubts(specs))
    skipped = [k for k, v in arrays.items() if k not in used and v.dtype.kind == "f"]
    if skipped and how != "guessed from names":
        notes.append(
            f"only {len(used)} of {len(arrays)} arrays form the {what} stack; not used: "
            f"{', '.join(skipped[:6])}{', ...' if len(skipped) > 6 else ''}"
        )
    unused: dict[str, list[str]] = {}
    for key in arrays:
        if key not in used:
            unused.setdefault(al.split_key(key)[0] or key, []).append(key)
    others = [
        LayerInfo(
            name=group,
            kind="tensor",
            weights=tuple((k, tuple(arrays[k].shape)) for k in keys),
            note=f"not {'an' if what[0] in 'LR' else 'a'} {what}; not used",
        )
        for group, keys in unused.items()
    ]
    return cells.build_model(
        chosen, specs, ctx, source_path=str(probe.path), others=others, notes=notes
    )


READER = Reader(
    name="NumPy arrays",
    sniff=sniff,
    load=load_arrays,
    priority=-10,
    options=("layout", "forget_bias", "prefix", "budget", "nonlinearity"),
)

__all__ = ["READER", "load_arrays", "read_arrays", "sniff"]
