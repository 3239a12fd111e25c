"""Issue 18 item 6: every LoadError is one printable line of at most 300 characters.

The guarantee sits in ``LoadError``'s constructor, so it holds for every reader (and for
``load_model``'s wrapper of a reader's stray exception) without each quoting carefully: these
tests feed it the text a hostile file controls (newlines, terminal escapes, NULs, an
840,067-character dims list) directly, through a reader, and through ``load_model``.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
from bounded import assert_one_printable_line, bounded_load

import lstmviz.io
from lstmviz.io import ChoiceRequired, LoadError, Reader, load_model
from lstmviz.io.errors import MAX_MESSAGE, one_line

HOSTILE_TEXT = {
    "newline": "layer\nname",
    "carriage return": "progress\rOVERWRITTEN",
    "terminal colour": "\x1b[31mred\x1b[0m",
    "terminal title": "\x1b]0;pwned\x07",
    "NUL": "a\x00b",
    "bell and backspace": "\x07\x08\x08",
    "unicode line separator": "a\u2028b\u2029c\x85d",
    "lone surrogate": "a\ud800b",
    "DEL and C1": "\x7f\x9b31m",
    "840,067 characters": "[" + ", ".join(["1"] * 280_022) + "]",
    "long and escaped": "\x1b" * 100_000,
}


@pytest.mark.parametrize("name", list(HOSTILE_TEXT))
def test_load_error_is_one_printable_bounded_line(name: str) -> None:
    text = HOSTILE_TEXT[name]
    err = LoadError(f"model.onnx: tensor {text} has dims {text}; expected 3 axes")
    message = str(err)
    assert_one_printable_line(message)
    assert message.startswith("model.onnx: tensor ")
    assert one_line(message) == message  # idempotent: re-raising changes nothing
    assert str(pickle.loads(pickle.dumps(err))) == message


def test_escapes_are_shown_not_dropped() -> None:
    assert str(LoadError("a\nb\x1b[31mc\x00d\te")) == "a\\nb\\x1b[31mc\\x00d e"
    assert (
        str(LoadError("caf\u00e9 \u4e2d\u6587 \U0001f600")) == "caf\u00e9 \u4e2d\u6587 \U0001f600"
    )


def test_long_message_keeps_its_start_and_its_advice() -> None:
    message = str(LoadError("m.onnx: dims " + "9" * 1_000_000 + "; re-export with opset 17"))
    assert len(message) == MAX_MESSAGE and "…" in message
    assert message.startswith("m.onnx: dims 999") and message.endswith("re-export with opset 17")


def test_choice_required_is_bounded_and_keeps_its_choices() -> None:
    err = ChoiceRequired("two.pt: two LSTMs\n" + "x" * 1000, "prefix", ("a\nb", "c"))
    assert_one_printable_line(str(err))
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, ChoiceRequired) and again.choices == ("a\nb", "c")
    assert again.option == "prefix" and str(again) == str(err)


def test_load_model_bounds_what_a_reader_raises(tmp_path: Path, monkeypatch) -> None:
    """A reader's own LoadError, a stray exception and a MemoryError: each one line."""
    path = tmp_path / "m.bin"
    path.write_bytes(b"anything")
    raised: list[BaseException] = []

    def load(probe, **options):
        raise raised[0]

    reader = Reader(name="Test", sniff=lambda probe: True, load=load)
    monkeypatch.setattr(lstmviz.io, "READERS", (reader,))
    for exc in (
        LoadError("m.bin: module \x1b[2J" + "os\nsystem" * 10_000),
        KeyError("key\nwith\x00newline" * 10_000),
        RecursionError("maximum recursion depth exceeded"),
        MemoryError(),
        OverflowError("int too large\n"),
    ):
        raised[:] = [exc]
        with pytest.raises(LoadError) as info:
            load_model(path)
        assert_one_printable_line(str(info.value))
        assert str(info.value).startswith("m.bin: ")


def test_file_names_are_file_content_too(tmp_path: Path) -> None:
    path = tmp_path / "evil\n\x1b[31mname.pt"
    path.write_bytes(b"")
    with pytest.raises(LoadError) as info:
        load_model(path)
    assert (
        str(info.value)
        == "evil\\n\\x1b[31mname.pt: file is empty; expected a Keras, TF1, PyTorch or ONNX file"
    )


def test_through_a_real_reader_in_a_bounded_child(tmp_path: Path) -> None:
    """A safetensors dtype of 840,067 characters with escapes, refused in a child process."""
    dtype = "\x1b[31m\n" + "F" * 840_067
    header = json.dumps({"w": {"dtype": dtype, "shape": [1], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "long.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    bounded_load(path).assert_refused("long.safetensors", "has dtype")
