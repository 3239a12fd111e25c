"""The Qt-free half of the command line: ``--info`` and ``--export-trace``.

Whatever the file, the user sees one line on stderr and a non-zero exit, never a traceback:
``LoadError`` / ``ValueError`` messages are already one printable line (``one_line`` again
here for what the CLI adds, the choices of a ``ChoiceRequired``), and any other exception is
reported as one line too (its traceback goes to the debug log, ``-v``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from lstmviz.core.summary import model_summary
from lstmviz.io import load_model
from lstmviz.io.errors import ChoiceRequired, LoadError, one_line
from lstmviz.resources import apply_example, default_model_path

logger = logging.getLogger(__name__)


def _fail(message: str, code: int = 2) -> int:
    print(one_line(f"lstmviz: {message}", limit=600), file=sys.stderr)
    return code


def run_text(args: argparse.Namespace, options: dict[str, object]) -> int:
    """``--info`` / ``--export-trace``: 0 on success, 2 for a file lstmviz refuses, 1 for a
    failure of lstmviz itself (a bug), each with one line on stderr."""
    try:
        return _run_text(args, options)
    except BrokenPipeError:
        raise  # the caller quiets it: `lstmviz m.h5 --info | head`
    except (LoadError, ValueError, OSError) as exc:
        return _fail(str(exc))
    except Exception as exc:
        logger.debug("--info failed", exc_info=True)
        return _fail(f"internal error: {type(exc).__name__}: {exc} (run with -v for details)", 1)


def _run_text(args: argparse.Namespace, options: dict[str, object]) -> int:
    apply_example(args)  # --example NAME: its model and sequence
    path = args.path or str(default_model_path())
    try:
        model = load_model(path, **options)
    except ChoiceRequired as exc:
        example = exc.choices[0] if exc.choices else "…"
        return _fail(
            f"{exc} (one of: {', '.join(exc.choices)}; e.g. --option {exc.option}={example})"
        )
    except LoadError as exc:
        return _fail(str(exc))
    if args.info:
        # names in the summary come from the file: no escape sequence reaches the terminal
        lines = model_summary(model).splitlines()
        print("\n".join(one_line(line, limit=10_000) for line in lines))
        if getattr(args, "other", None):  # lstmviz A B --info: the comparison as text
            from lstmviz.comparison import compare

            c = compare(model, load_model(args.other))
            print(f"\ncompared with {one_line(str(args.other))} (B):")
            print("\n".join(one_line(line, limit=10_000) for line in c.summary().splitlines()))
    if args.export_trace:
        from lstmviz.core.bounded_export import refuse_before_run
        from lstmviz.core.checkpointed_trace import wants_bounded
        from lstmviz.core.compute import run
        from lstmviz.core.export import save_trace_npz
        from lstmviz.core.sequence import load_sequence
        from lstmviz.resources import default_sequence_path

        seq_path = args.sequence or default_sequence_path(path)
        if seq_path is None:
            return _fail("--export-trace needs --sequence FILE")
        try:
            x = load_sequence(seq_path, width=model.input_size, embedding=model.embedding)
            if wants_bounded(model, x):  # said before a run of minutes, not after it
                refuse_before_run(model, x)
            save_trace_npz(run(model, x), args.export_trace)
        except (OSError, ValueError) as exc:
            return _fail(str(exc))
        print(f"trace written to {args.export_trace}")
    return 0
