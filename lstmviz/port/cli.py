"""``lstmviz export MODEL --to TARGET OUT``: the command-line face of ``lstmviz.export``.

Prints one summary line and exits 0; a file lstmviz cannot read or a model the target cannot
hold prints one line to stderr and exits 2. ``--option`` passes reader options (as for the
viewer), ``--set`` export options (``layout=tf1``, ``format=safetensors``, ``embed=false``),
``--code`` also prints the code that loads the written file in the target framework.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lstmviz.port import OPTIONS, TARGETS, ExportError, export


def build_parser() -> argparse.ArgumentParser:
    takes = "; ".join(f"{t}: {', '.join(o)}" for t, o in OPTIONS.items() if o)
    p = argparse.ArgumentParser(
        prog="lstmviz export",
        description="Write a model's LSTM, GRU and RNN weights for another framework.",
    )
    p.add_argument("model", metavar="MODEL", help="weights file lstmviz reads")
    p.add_argument("--to", required=True, choices=TARGETS, help="target framework")
    p.add_argument("out", metavar="OUT", help="file to write (.pt/.safetensors, .weights.h5, "
                   ".onnx, .npz, .py)")  # fmt: skip
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="reader option, e.g. prefix=encoder.lstm, layout=pytorch, forget_bias=1.0",
    )  # fmt: skip
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help=f"export option ({takes})",
    )  # fmt: skip
    p.add_argument("--code", action="store_true", help="print the code that loads the result")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from lstmviz.cli import parse_options
    from lstmviz.io import load_model
    from lstmviz.io.errors import LoadError

    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    settings: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"lstmviz export: --set wants KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        settings[key] = value
    try:
        model = load_model(args.model, **parse_options(args.option))
        result = export(model, args.to, args.out, **settings)
    except (LoadError, ExportError, OSError) as exc:
        print(f"lstmviz: {exc}", file=sys.stderr)
        return 2
    print(result.summary)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.code:
        print(result.code, end="")
    return 0
