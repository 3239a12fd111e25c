"""Run a load in a child process under a memory cap and a time limit, and measure what it cost.

Issue 18's promise for every hostile file: no crash, no hang (an answer within 2 s), peak memory
at most 200 MB + 2 × the file's size, and one printable line of ``LoadError`` (``ValueError`` for
sequences). Checking that inside the test process would let one bad file take the whole suite
down, so loads run in a fork of a small server process that has imported ``lstmviz.io`` (and
``lstmviz.core.sequence``) once: a fork costs milliseconds, its peak RSS is measured on its own
(``ru_maxrss`` of the child minus its RSS at the fork), and ``RLIMIT_AS`` stops a runaway
allocation before it can hurt the machine.

    from bounded import bounded_load
    out = bounded_load(path)                      # lstmviz.load_model(path)
    out = bounded_load(path, kind="sequence", input_size=3)
    out.assert_refused()                          # LoadError / ValueError, one printable line,
                                                  # within time and memory
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The promise (issue 18): seconds to answer, MB of peak memory on top of 2 × the file size.
TIME_LIMIT_S = 2.0
BASE_BUDGET_MB = 200.0
#: Slack for a loaded CI machine: a test fails past this factor times the promised time.
TIME_SLACK = 3.0
#: Hard stop for a child that hangs (well past the promise, so a slow machine is not a hang).
KILL_AFTER_S = 8.0

_SERVER = textwrap.dedent(
    r"""
    import json, os, resource, signal, sys, time
    import lstmviz.io, lstmviz.core.sequence
    from lstmviz.io import LoadError

    def rss_kb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    def vm_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")

    def child(req, w):
        base = rss_kb()
        cap = vm_bytes() + int(req["cap_mb"] * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        t0 = time.perf_counter()
        out = {"kind": "model", "message": ""}
        try:
            if req["kind"] == "sequence":
                arr = lstmviz.core.sequence.load_sequence(req["path"], **req["options"])
                out = {"kind": "sequence", "message": repr(getattr(arr, "shape", None))}
            else:
                m = lstmviz.io.load_model(req["path"], **req["options"])
                out = {"kind": "model", "message": repr(m)[:300]}
        except LoadError as e:
            out = {"kind": "load_error", "message": str(e)}
        except ValueError as e:
            out = {"kind": "value_error", "message": str(e)}
        except MemoryError as e:
            out = {"kind": "memory_error", "message": str(e)[:300]}
        except BaseException as e:
            out = {"kind": "other", "message": f"{type(e).__name__}: {str(e)[:300]}"}
        out["seconds"] = time.perf_counter() - t0
        out["peak_mb"] = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        os.write(w, json.dumps(out).encode())
        os._exit(0)

    for line in sys.stdin:
        req = json.loads(line)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            child(req, w)
        os.close(w)
        chunks, deadline, status = [], time.monotonic() + req["kill_after"], None
        os.set_blocking(r, False)
        while True:
            try:
                b = os.read(r, 65536)
                if b:
                    chunks.append(b)
            except BlockingIOError:
                pass
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                try:
                    while (b := os.read(r, 65536)):
                        chunks.append(b)
                except BlockingIOError:
                    pass
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = "timeout"
                break
            time.sleep(0.002)
        os.close(r)
        if status == "timeout":
            res = {"kind": "timeout", "message": "", "seconds": req["kill_after"], "peak_mb": 0}
        elif chunks:
            res = json.loads(b"".join(chunks))
        else:
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            res = {"kind": "crash", "message": f"signal {sig} status {status}",
                   "seconds": 0, "peak_mb": 0}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()
    """
)


@dataclass(frozen=True)
class Outcome:
    """What one bounded load did: ``kind`` is model, sequence, load_error, value_error,
    memory_error, other (any other exception), crash (killed by a signal) or timeout."""

    kind: str
    message: str
    seconds: float
    peak_mb: float
    file_mb: float

    @property
    def budget_mb(self) -> float:
        return BASE_BUDGET_MB + 2 * self.file_mb

    def assert_bounded(self) -> None:
        """No crash or hang, within the time and memory promise (whatever the answer was)."""
        assert self.kind not in ("crash", "timeout", "other", "memory_error"), self
        assert self.seconds <= TIME_LIMIT_S * TIME_SLACK, f"took {self.seconds:.2f} s: {self}"
        assert self.peak_mb <= self.budget_mb, f"peak {self.peak_mb:.0f} MB: {self}"

    def assert_refused(self, *needles: str) -> None:
        """Refused with one printable line of at most 300 characters naming each needle."""
        self.assert_bounded()
        assert self.kind in ("load_error", "value_error"), self
        assert_one_printable_line(self.message)
        for needle in needles:
            assert needle.lower() in self.message.lower(), (needle, self.message)


def assert_one_printable_line(message: str, limit: int = 300) -> None:
    assert message, "empty message"
    assert message.isprintable(), f"unprintable characters in {message!r}"
    assert len(message) <= limit, f"{len(message)} characters: {message[:120]}…"


class _Server:
    def __init__(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )
        self.lock = threading.Lock()
        atexit.register(self.close)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the bounded-load server died")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=10)


_server: _Server | None = None


def bounded_load(
    path: str | os.PathLike[str],
    kind: str = "model",
    cap_mb: float | None = None,
    **options: Any,
) -> Outcome:
    """Load ``path`` (``lstmviz.load_model``, or ``load_sequence`` with ``kind="sequence"``) in
    a forked child under ``RLIMIT_AS`` (default: 4 × the budget) and report what happened."""
    global _server
    if _server is None or _server.proc.poll() is not None:
        _server = _Server()
    p = Path(path)
    try:
        file_mb = p.stat().st_size / 2**20 if p.is_file() else 0.0
    except OSError:
        file_mb = 0.0
    budget = BASE_BUDGET_MB + 2 * file_mb
    res = _server.ask(
        {
            "path": str(path),
            "kind": kind,
            "options": options,
            "cap_mb": cap_mb if cap_mb is not None else 4 * budget,
            "kill_after": KILL_AFTER_S,
        }
    )
    return Outcome(res["kind"], res["message"], res["seconds"], res["peak_mb"], file_mb)
