"""The Qt-free half of the command line: ``--info`` and ``--export-trace``."""

from __future__ import annotations

import argparse
import sys

from lstmviz.core.summary import model_summary
from lstmviz.io import load_model
from lstmviz.io.errors import ChoiceRequired, LoadError
from lstmviz.resources import default_model_path


def run_text(args: argparse.Namespace, options: dict[str, object]) -> int:
    path = args.path or str(default_model_path())
    try:
        model = load_model(path, **options)
    except ChoiceRequired as exc:
        example = exc.choices[0] if exc.choices else "…"
        print(
            f"lstmviz: {exc} (one of: {', '.join(exc.choices)}; e.g. "
            f"--option {exc.option}={example})",
            file=sys.stderr,
        )
        return 2
    except LoadError as exc:
        print(f"lstmviz: {exc}", file=sys.stderr)
        return 2
    if args.info:
        print(model_summary(model))
    if args.export_trace:
        from lstmviz.core.compute import run
        from lstmviz.core.export import save_trace_npz
        from lstmviz.core.sequence import load_sequence
        from lstmviz.resources import default_sequence_path

        seq_path = args.sequence or default_sequence_path(path)
        if seq_path is None:
            print("lstmviz: --export-trace needs --sequence FILE", file=sys.stderr)
            return 2
        try:
            x = load_sequence(seq_path, width=model.input_size, embedding=model.embedding)
            save_trace_npz(run(model, x), args.export_trace)
        except (OSError, ValueError) as exc:
            print(f"lstmviz: {exc}", file=sys.stderr)
            return 2
        print(f"trace written to {args.export_trace}")
    return 0
