"""Command line: ``lstmviz [PATH [PATH2]] [--sequence FILE] [--step N] [--layer K]
[--screenshot PNG] [--info]``, and ``lstmviz export MODEL --to TARGET OUT``.

``--info`` and ``--export-trace`` without a window never import Qt, so they work on servers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lstmviz",
        description="Desktop debugger for LSTM internals: open a Keras, TF1, PyTorch or ONNX "
        "weights file, see its gates, step through a sequence.",
    )
    p.add_argument(
        "path", nargs="?", help="weights file or checkpoint folder (default: bundled example)"
    )
    p.add_argument(
        "other", nargs="?", metavar="PATH2", help="a second model: open both in compare mode"
    )
    p.add_argument("--example", metavar="NAME", help="open a bundled example, e.g. brackets")
    p.add_argument("--sequence", metavar="FILE", help="input sequence (.csv, .txt, .npy, .npz)")
    p.add_argument("--step", type=int, metavar="N", help="time step to show")
    p.add_argument("--layer", type=int, metavar="K", help="layer to select")
    p.add_argument("--screenshot", metavar="PNG", help="render the window to PNG and exit")
    p.add_argument("--info", action="store_true", help="print a text summary and exit (no GUI)")
    p.add_argument("--export-trace", metavar="NPZ", help="write the full trace to NPZ and exit")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reader option, e.g. prefix=encoder.lstm, layout=pytorch, forget_bias=1.0",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debugging details")
    return p


def parse_options(items: Sequence[str]) -> dict[str, object]:
    """``["forget_bias=0.5", "prefix=enc"]`` → ``{"forget_bias": 0.5, "prefix": "enc"}``."""
    options: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"lstmviz: --option wants KEY=VALUE, got {item!r}")
        try:
            options[key] = (
                float(value) if key in {"forget_bias", "cell_clip", "proj_clip"} else value
            )
        except ValueError as exc:
            raise SystemExit(f"lstmviz: --option {key} wants a number, got {value!r}") from exc
    return options


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:  # `lstmviz export MODEL --to TARGET OUT`: its own parser
        from lstmviz.port.cli import main as export_main

        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    options = parse_options(args.option)
    if args.info or (args.export_trace and not args.screenshot):
        from lstmviz.cli_text import run_text

        try:
            return run_text(args, options)
        except BrokenPipeError:  # `lstmviz m.h5 --info | head`: the reader left, not an error
            # Python flushes stdout again at exit; point it at devnull so that stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    from lstmviz.gui.app import launch

    return launch(args, options)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
