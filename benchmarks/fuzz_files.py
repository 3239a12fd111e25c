"""Mutate every fixture lstmviz can load and check each mutant loads or raises LoadError fast.

    python benchmarks/fuzz_files.py                      # 3000 mutants, summary table
    python benchmarks/fuzz_files.py --total 20000 --seed 7
    python benchmarks/fuzz_files.py --json               # machine-readable (tests/io/test_fuzz.py)

Seeds are all files under ``tests/fixtures/**`` that ``load_model`` accepts (or answers with
``ChoiceRequired``), so fixtures added for new formats are fuzzed without touching this file.
Mutations: truncate at a random point, flip a few bytes (often in the first 512, where headers
live), zero a range, duplicate a range. Each mutant is written under the fixture's own name in a
scratch folder next to links to the fixture's siblings (so multi-file formats such as TF1
checkpoints still find their ``.data`` shard). A mutant passes if it loads or raises
``LoadError`` within ``--limit`` seconds; anything else is a bug and is listed with the seed
needed to reproduce it. Exit status 1 when any mutant failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lstmviz.io import ChoiceRequired, LoadError, load_model  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
HANG_SECONDS = 10
MAX_SEED_BYTES = 4 << 20


@dataclass
class Outcome:
    fixture: str
    mutation: str
    result: str  # "loaded", "LoadError", "slow", or the unexpected exception's type
    seconds: float
    detail: str = ""


class HangError(Exception):
    """Raised by SIGALRM when one load runs for HANG_SECONDS."""


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random damage to ``data`` and a description that reproduces it."""
    n = len(data)
    kind = rng.choice(("truncate", "flip", "zero", "duplicate"))
    if kind == "truncate" or n < 2:
        cut = rng.randrange(0, max(n, 1))
        return data[:cut], f"truncate at {cut}"
    if kind == "flip":
        out = bytearray(data)
        span = min(n, 512) if rng.random() < 0.5 else n
        spots = sorted(rng.randrange(span) for _ in range(rng.randint(1, 8)))
        for i in spots:
            out[i] ^= rng.randint(1, 255)
        return bytes(out), f"flip bytes {spots}"
    start = rng.randrange(n)
    length = rng.randint(1, min(256, n - start))
    if kind == "zero":
        return data[:start] + bytes(length) + data[
            start + length :
        ], f"zero {start}:{start + length}"
    at = rng.randrange(n + 1)
    chunk = data[start : start + length]
    return data[:at] + chunk + data[at:], f"duplicate {start}:{start + length} at {at}"


def mutate_member(data: bytes, rng: random.Random) -> tuple[bytes, str] | None:
    """Damage one member of a zip and rewrite it with valid CRCs, so the damage reaches the
    parser behind the zip layer (torch's data.pkl, a .keras config)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zin:
            infos = zin.infolist()
            member = rng.choice(infos)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zout:
                for info in infos:
                    payload = zin.read(info)
                    if info is member:
                        payload, how = mutate_bytes(payload, rng)
                    zout.writestr(info, payload)
    except (zipfile.BadZipFile, IndexError, ValueError, OSError):
        return None
    return buf.getvalue(), f"member {member.filename}: {how}"


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    if data.startswith(b"PK\x03\x04") and rng.random() < 0.5:
        done = mutate_member(data, rng)
        if done is not None:
            return done
    return mutate_bytes(data, rng)


def accepted(path: Path) -> bool:
    try:
        load_model(path)
    except ChoiceRequired:
        return True
    except Exception:  # not a seed (a LoadError, or a bug other tests report)
        return False
    return True


def find_seeds(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [p for p in files if p.stat().st_size <= MAX_SEED_BYTES and accepted(p)]


def _on_alarm(signum: int, frame: object) -> None:
    raise HangError


def try_mutant(path: Path, limit: float) -> tuple[str, float, str]:
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_SECONDS)
    start = time.perf_counter()
    try:
        load_model(path)
        result, detail = "loaded", ""
    except LoadError as exc:
        result, detail = "LoadError", str(exc)
        if ": unreadable " in detail and exc.__cause__ is not None:
            # load_model's catch-all turned a reader's stray exception into a LoadError:
            # passes, but counted so reader authors see where their checks are missing.
            detail = f"wrapped {type(exc.__cause__).__name__}: {detail}"
    except HangError:
        result, detail = "hang", f"still running after {HANG_SECONDS} s"
    except BaseException as exc:  # exactly what the fuzzer looks for
        result, detail = type(exc).__name__, str(exc)[:300]
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - start
    if result in ("loaded", "LoadError") and seconds > limit:
        result = "slow"
    return result, seconds, detail


def fuzz(
    seeds: list[Path], per_file: int, seed: int, limit: float, budget: float, progress: bool
) -> list[Outcome]:
    """Round-robin over the seeds (mutant k of every file before mutant k+1), stopping once
    ``budget`` seconds are used, so a time budget still covers every format."""
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lstmviz-fuzz-") as tmp:
        works = []
        for index, src in enumerate(seeds):
            work = Path(tmp) / str(index)
            work.mkdir()
            for sibling in src.parent.iterdir():
                if sibling != src:
                    os.symlink(sibling, work / sibling.name)
            works.append((src, str(src.relative_to(FIXTURES)), src.read_bytes(), work / src.name))
        for k in range(per_file):
            for _src, rel, data, target in works:
                if time.perf_counter() - started > budget:
                    return outcomes
                mutant, how = mutate(data, random.Random(f"{seed}:{rel}:{k}"))
                target.write_bytes(mutant)
                if progress:
                    print(f"trying {rel} #{k}: {how}", file=sys.stderr, flush=True)
                result, seconds, detail = try_mutant(target, limit)
                outcomes.append(Outcome(rel, f"#{k} {how}", result, round(seconds, 4), detail))
    return outcomes


def summarize(seeds: list[Path], outcomes: list[Outcome], limit: float) -> dict:
    bad = [o for o in outcomes if o.result not in ("loaded", "LoadError")]
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    return {
        "seeds": [str(p.relative_to(FIXTURES)) for p in seeds],
        "mutants": len(outcomes),
        "results": dict(Counter(o.result for o in outcomes)),
        "limit_seconds": limit,
        "slowest": asdict(slowest) if slowest else None,
        "total_seconds": round(sum(o.seconds for o in outcomes), 2),
        "wrapped": sum(o.detail.startswith("wrapped") for o in outcomes),
        "failures": [asdict(o) for o in bad],
    }


def print_table(summary: dict, outcomes: list[Outcome]) -> None:
    per: dict[str, Counter] = {}
    for o in outcomes:
        per.setdefault(o.fixture, Counter())[o.result] += 1
    width = max((len(f) for f in per), default=10)
    print(f"{'fixture':<{width}}  mutants  loaded  LoadError  wrapped  other  max s")
    for fixture, counts in per.items():
        worst = max(o.seconds for o in outcomes if o.fixture == fixture)
        other = sum(v for k, v in counts.items() if k not in ("loaded", "LoadError"))
        wrapped = sum(o.fixture == fixture and o.detail.startswith("wrapped") for o in outcomes)
        print(
            f"{fixture:<{width}}  {sum(counts.values()):7d}  {counts['loaded']:6d}  "
            f"{counts['LoadError']:9d}  {wrapped:7d}  {other:5d}  {worst:5.3f}"
        )
    print(
        f"\n{summary['mutants']} mutants of {len(summary['seeds'])} fixtures: {summary['results']}"
    )
    print(f"load time total {summary['total_seconds']} s, slowest {summary['slowest']}")
    for f in summary["failures"]:
        print(f"FAIL {f['fixture']} {f['mutation']}: {f['result']} {f['detail']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=3000, help="mutants over all fixtures")
    parser.add_argument("--min-per-file", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=1.0, help="seconds allowed per mutant")
    parser.add_argument("--budget", type=float, default=float("inf"), help="stop after N s")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--progress", action="store_true", help="name each mutant on stderr")
    parser.add_argument("--root", type=Path, default=FIXTURES)
    args = parser.parse_args(argv)
    seeds = find_seeds(args.root)
    per_file = max(args.min_per_file, args.total // max(len(seeds), 1))
    outcomes = fuzz(seeds, per_file, args.seed, args.limit, args.budget, args.progress)
    summary = summarize(seeds, outcomes, args.limit)
    if args.json:
        print(json.dumps(summary))
    else:
        print_table(summary, outcomes)
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
