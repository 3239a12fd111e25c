"""What a plain install runs: the compiled engine (numba is a regular dependency), on several
threads where that pays, with no setting from the user."""

import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_numba_is_a_regular_dependency_here():
    """``pip install .`` brings numba wherever it has wheels (this machine among them), not
    only with an extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    numba = [Requirement(r) for r in project["dependencies"] if r.startswith("numba")]
    assert len(numba) == 1
    assert numba[0].marker is None or numba[0].marker.evaluate()


FRESH = """
import sys
import numpy as np
import lstmviz
from lstmviz.core import LSTMDirection, LSTMLayer, LSTMModel, compiled, threads

assert "numba" not in sys.modules  # importing lstmviz does not pay numba's import
rng = np.random.default_rng(0)
H, D = 256, 8
w = LSTMDirection(W_x=rng.normal(size=(4 * H, D)) * 0.3, W_h=rng.normal(size=(4 * H, H)) * 0.1,
                  b=rng.normal(size=4 * H) * 0.1)
model = LSTMModel((LSTMLayer("l", (w,)),))
x = rng.normal(size=(300, D))
out = lstmviz.run(model, x).output                     # the defaults
assert compiled.ready() and compiled.recurrence() is not None, "compiled engine not used"
team = any(t.name == "lstmviz-team" for t in __import__("threading").enumerate())
print(threads.requested(), int(team))
np.testing.assert_allclose(out, lstmviz.run(model, x, engine="numpy").output, atol=1e-5)
"""


def test_a_fresh_process_runs_the_compiled_engine_on_every_core_by_default():
    env = {k: v for k, v in __import__("os").environ.items() if k != "LSTMVIZ_NUM_THREADS"}
    done = subprocess.run(
        [sys.executable, "-c", FRESH], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    asked, team = (int(v) for v in done.stdout.split())
    from lstmviz.core import threads

    assert asked == threads.cores()
    assert team == (asked >= 2)  # a 1-core runner keeps one thread
