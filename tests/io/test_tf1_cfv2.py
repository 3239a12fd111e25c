"""TF1 graph checkpoints made under TF2's control flow v2 (make_cfv2_fixtures.py, TF 2.21 and
2.15): the cell's settings live in the while-loop body function of ``graph_def.library``, and
lstmviz must read them there to match TensorFlow's outputs. Also: string options, proj_clip=,
and hostile function libraries."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from test_tf1_bad_files import varint

from lstmviz.core.compute import run
from lstmviz.io import LoadError, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf1"
TOL = 1e-5
VERSIONS = ("tf221", "tf215")
#: What each fixture's cells were built with, per direction: (forget_bias, cell_clip, activation).
SETTINGS = {
    "lstm": [(0.6, 0.5, "softsign")],
    "multi": [(0.25, None, "tanh"), (0.8, 0.3, "relu")],
    "bidi": [(0.7, None, "tanh"), (1.5, 0.6, "elu")],
}
CASES = [f"cfv2_{name}_{v}" for name in SETTINGS for v in VERSIONS]


def _expected(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "expected.npz") as data:
        return dict(data)


def _directions(model) -> list:
    return [d for layer in model.layers for d in layer.directions]


@pytest.mark.parametrize("name", CASES)
def test_control_flow_v2_checkpoints_match_tensorflow(name: str) -> None:
    model = load_model(FIXTURES / name)
    exp = _expected(FIXTURES / name)
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL, rtol=0)


@pytest.mark.parametrize("name", CASES)
def test_settings_are_read_from_the_loop_body_function(name: str) -> None:
    model = load_model(FIXTURES / name)
    wanted = SETTINGS[name.split("_")[1]]
    dirs = _directions(model)
    assert len(dirs) == len(wanted)
    for d, (fb, clip, act) in zip(dirs, wanted, strict=True):
        assert (d.provenance.setting("forget_bias").value, d.cell_clip, d.act_cand.name) == (
            fb,
            clip,
            act,
        )
        for setting in d.provenance.settings:
            assert not setting.assumed, setting
            assert "read from .meta" in setting.note or "no clip on c" in setting.note, setting
    assert "in function" in dirs[0].provenance.setting("forget_bias").note


@pytest.mark.parametrize("version", VERSIONS)
def test_projection_clip_and_peepholes_in_the_loop_body(version: str) -> None:
    (w,) = _directions(load_model(FIXTURES / f"cfv2_lstm_{version}"))
    assert w.proj_clip == 0.4 and w.W_p is not None and w.has_peepholes
    assert not w.provenance.setting("proj_clip").assumed


@pytest.mark.parametrize("version", VERSIONS)
def test_bidirectional_dynamic_rnn_is_dynamic_and_directions_differ(version: str) -> None:
    model = load_model(FIXTURES / f"cfv2_bidi_{version}")
    (layer,) = model.layers
    assert layer.kind.startswith("bidirectional_dynamic_rnn")
    assert [d.reverse for d in layer.directions] == [False, True]
    assert any("out_bw already in time order" in n for n in model.notes)


def _without_meta(tmp_path: Path, name: str) -> Path:
    for f in (FIXTURES / name).iterdir():
        if f.suffix != ".meta":
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_string_options_override_like_numbers(tmp_path: Path) -> None:
    """Without the .meta, the settings given as strings (as from a command line) match TF."""
    folder = _without_meta(tmp_path, "cfv2_lstm_tf221")
    exp = _expected(FIXTURES / "cfv2_lstm_tf221")
    assumed = load_model(folder)
    assert np.abs(run(assumed, exp["x"]).output - exp["output"]).max() > 1e-3
    model = load_model(
        folder, forget_bias="0.6", cell_clip=" 0.5", proj_clip="0.4", activation="softsign"
    )
    np.testing.assert_allclose(run(model, exp["x"]).output, exp["output"], atol=TOL, rtol=0)
    (w,) = _directions(model)
    assert (w.cell_clip, w.proj_clip) == (0.5, 0.4)
    assert w.provenance.setting("proj_clip").note == "given by the user"


def test_proj_clip_override_beats_the_graph_and_zero_turns_it_off() -> None:
    (w,) = _directions(load_model(FIXTURES / "cfv2_lstm_tf215", proj_clip=0.0))
    assert w.proj_clip is None and w.provenance.setting("proj_clip").note == "given by the user"
    (w,) = _directions(load_model(FIXTURES / "cfv2_lstm_tf215", proj_clip=2))
    assert w.proj_clip == 2.0


def test_proj_clip_without_a_projection_is_noted() -> None:
    model = load_model(FIXTURES / "cfv2_multi_tf221", proj_clip=0.3)
    assert any("proj_clip= ignored" in n for n in model.notes)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"cell_clip": "abc"}, "option cell_clip='abc' is not a number"),
        ({"forget_bias": [1.0]}, "option forget_bias=[1.0] is not a number"),
        ({"proj_clip": "inf"}, "option proj_clip='inf' is not a number"),
        ({"forget_bias": True}, "option forget_bias=True is not a number"),
        ({"scope": 3}, "option scope=3 has type int; expected a string"),
        ({"activation": 1.5}, "option activation=1.5 has type float; expected a string"),
    ],
)
def test_bad_option_values_name_the_option(options: dict, fragment: str) -> None:
    with pytest.raises(LoadError) as info:
        load_model(FIXTURES / "cfv2_lstm_tf221", **options)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# --- hostile function libraries ----------------------------------------------------------------


def _field(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def _func_attr(name: str) -> bytes:
    return _field(10, _field(1, name.encode()))  # AttrValue.func = NameAttrList{name}


def _node(
    name: str, op: str, inputs: list[str], body: str = "", attrs: dict[str, bytes] | None = None
) -> bytes:
    out = _field(1, name.encode()) + _field(2, op.encode())
    out += b"".join(_field(3, i.encode()) for i in inputs)
    attrs = dict(attrs or {}, **({"body": _func_attr(body)} if body else {}))
    for key, value in attrs.items():  # map entry: key = 1, AttrValue = 2
        out += _field(5, _field(1, key.encode()) + _field(2, value))
    return out


def _function(name: str, args: list[str], nodes: list[bytes]) -> bytes:
    signature = _field(1, name.encode()) + b"".join(_field(2, _field(1, a.encode())) for a in args)
    return _field(1, signature) + b"".join(_field(3, n) for n in nodes)


def _meta(functions: list[bytes]) -> bytes:
    top = [
        _node("rnn/lstm_cell/kernel", "VarHandleOp", []),
        _node("rnn/while", "While", ["rnn/lstm_cell/kernel"], body="body"),
    ]
    library = b"".join(_field(1, f) for f in functions)
    graph = b"".join(_field(1, n) for n in top) + _field(2, library)
    return _field(2, graph)


@pytest.mark.parametrize("fan_out", [1, 4])
def test_recursive_function_library_is_bounded(tmp_path: Path, fan_out: int) -> None:
    """A body calling itself (once, or 4 times: 4**8 paths) ends quickly with a note."""
    folder = _without_meta(tmp_path, "cfv2_lstm_tf221")
    calls = [_node(f"w{k}", "StatelessWhile", ["k"], body="body") for k in range(fan_out)]
    (folder / "model.ckpt.meta").write_bytes(_meta([_function("body", ["k"], calls)]))
    start = time.perf_counter()
    model = load_model(folder)
    assert time.perf_counter() - start < 5
    assert any("function calls" in n and "not scanned" in n for n in model.notes), model.notes
    assert _directions(model)[0].provenance.setting("forget_bias").assumed


def test_corrupt_library_costs_only_the_graph_settings(tmp_path: Path) -> None:
    """Damage inside the loop body function: settings fall back to defaults, never a crash."""
    for f in (FIXTURES / "cfv2_multi_tf221").iterdir():
        shutil.copy(f, tmp_path / f.name)
    meta = tmp_path / "model.ckpt.meta"
    original = meta.read_bytes()
    body = original.find(b"decoder_rnn_while_body")
    assert body > 0
    rng = np.random.default_rng(7)
    for _ in range(25):
        b = bytearray(original)
        for pos in rng.integers(body - 64, len(b), size=4):
            b[pos] = int(rng.integers(0, 256))
        meta.write_bytes(bytes(b))
        try:
            model = load_model(tmp_path)
        except LoadError as exc:
            assert "\n" not in str(exc)
            continue
        assert [layer.hidden_size for layer in model.layers] == [4, 4]
    meta.write_bytes(original[: len(original) // 2])
    with pytest.raises(LoadError, match=r"model\.ckpt\.meta: not a readable MetaGraphDef"):
        load_model(meta)


def test_kernel_read_inside_a_nested_call_resolves_to_the_top_level_variable(
    tmp_path: Path,
) -> None:
    """While body → PartitionedCall → cell ops reading the resource handle argument itself."""
    const = _field(8, b"\x08\x01" + _field(5, np.float32(0.35).tobytes()))  # TensorProto
    cell_ops = [
        _node("lstm_cell/ReadVariableOp", "ReadVariableOp", ["kernel_handle"]),
        _node("lstm_cell/MatMul", "MatMul", ["x", "lstm_cell/ReadVariableOp:value:0"]),
        _node("lstm_cell/BiasAdd", "BiasAdd", ["lstm_cell/MatMul:product:0", "bias"]),
        _node(
            "lstm_cell/split",
            "Split",
            ["axis", "lstm_cell/BiasAdd:output:0"],
            attrs={"num_split": b"\x18\x04"},  # AttrValue.i = 4
        ),
        _node("lstm_cell/add/y", "Const", [], attrs={"value": const}),
        _node("lstm_cell/add", "AddV2", ["lstm_cell/split:output:2", "lstm_cell/add/y:output:0"]),
    ]
    call = _node("call", "StatefulPartitionedCall", ["k"], attrs={"f": _func_attr("cell")})
    folder = _without_meta(tmp_path, "cfv2_lstm_tf221")
    functions = [_function("body", ["k"], [call]), _function("cell", ["kernel_handle"], cell_ops)]
    (folder / "model.ckpt.meta").write_bytes(_meta(functions))
    (w,) = _directions(load_model(folder))
    fb = w.provenance.setting("forget_bias")
    assert (fb.value, fb.assumed) == (0.35, False)
    assert fb.note == "read from .meta (lstm_cell/add/y in function cell)"
