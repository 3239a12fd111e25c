"""Small canonical models for the export tests (H <= 5 keeps every framework call fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lstmviz
from lstmviz.core.activations import Activation
from lstmviz.core.dense import DenseLayer, NormLayer
from lstmviz.core.model import LSTMDirection, LSTMLayer, LSTMModel, MergeMode, OutputOrder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def direction(
    rng: np.random.Generator, D: int, H: int, P: int | None = None, reverse: bool = False, **kw
) -> LSTMDirection:
    f32 = np.float32
    return LSTMDirection(
        W_x=rng.normal(0, 0.5, (4 * H, D)).astype(f32),
        W_h=rng.normal(0, 0.5, (4 * H, P or H)).astype(f32),
        b=rng.normal(0, 0.5, 4 * H).astype(f32),
        W_p=None if P is None else rng.normal(0, 0.5, (P, H)).astype(f32),
        reverse=reverse,
        **kw,
    )


def peepholes(rng: np.random.Generator, H: int) -> dict[str, np.ndarray]:
    return {p: rng.normal(0, 0.5, H).astype(np.float32) for p in ("p_i", "p_f", "p_o")}


def stacked(seed: int = 0) -> LSTMModel:
    rng = np.random.default_rng(seed)
    return LSTMModel(
        layers=(
            LSTMLayer("l0", (direction(rng, 3, 4),)),
            LSTMLayer("l1", (direction(rng, 4, 4),)),
        )
    )


def bidirectional(seed: int = 1, merge: MergeMode = MergeMode.CONCAT) -> LSTMModel:
    rng = np.random.default_rng(seed)
    width = 8 if merge is MergeMode.CONCAT else 4
    return LSTMModel(
        layers=(
            LSTMLayer("b0", (direction(rng, 3, 4), direction(rng, 3, 4, reverse=True)), merge),
            LSTMLayer(
                "b1", (direction(rng, width, 4), direction(rng, width, 4, reverse=True)), merge
            ),
        )
    )


def projected(seed: int = 2) -> LSTMModel:
    rng = np.random.default_rng(seed)
    return LSTMModel(
        layers=(
            LSTMLayer("p0", (direction(rng, 3, 5, 2), direction(rng, 3, 5, 2, reverse=True))),
            LSTMLayer("p1", (direction(rng, 4, 5, 2), direction(rng, 4, 5, 2, reverse=True))),
        )
    )


def peephole(seed: int = 3) -> LSTMModel:
    rng = np.random.default_rng(seed)
    return LSTMModel(
        layers=(
            LSTMLayer("peep0", (direction(rng, 3, 4, **peepholes(rng, 4)),)),
            LSTMLayer(
                "peep1",
                (
                    direction(rng, 4, 3, **peepholes(rng, 3)),
                    direction(rng, 4, 3, reverse=True, **peepholes(rng, 3)),
                ),
            ),
        )
    )


def go_backwards(seed: int = 4) -> LSTMModel:
    """Keras LSTM(go_backwards=True) then a plain LSTM: output in reversed order."""
    rng = np.random.default_rng(seed)
    return LSTMModel(
        layers=(
            LSTMLayer(
                "back", (direction(rng, 3, 4, reverse=True),), output_order=OutputOrder.PROCESSING
            ),
            LSTMLayer("fwd", (direction(rng, 4, 3),)),
        )
    )


def bidirectional_backwards(seed: int = 8) -> LSTMModel:
    """Keras 2 ``Bidirectional(LSTM(go_backwards=True))``: the forward layer reads backwards,
    the merged sequence comes out reversed."""
    rng = np.random.default_rng(seed)
    dirs = (direction(rng, 3, 4, reverse=True), direction(rng, 3, 4))
    return LSTMModel(
        layers=(
            LSTMLayer("bb", dirs, MergeMode.SUM, output_order=OutputOrder.PROCESSING),
            LSTMLayer("after", (direction(rng, 4, 2),)),
        )
    )


def hard_sigmoid(seed: int = 5, name: str = "hard_sigmoid_k3") -> LSTMModel:
    rng = np.random.default_rng(seed)
    act = Activation(name)
    return LSTMModel(
        layers=(
            LSTMLayer("hs0", (direction(rng, 3, 4, act_gate=act),)),
            LSTMLayer("hs1", (direction(rng, 4, 3, act_gate=act),)),
        )
    )


def with_head(seed: int = 6) -> LSTMModel:
    rng = np.random.default_rng(seed)
    dense = DenseLayer(
        "out", rng.normal(0, 0.5, (2, 4)), rng.normal(0, 0.5, 2), Activation("sigmoid")
    )
    return LSTMModel(layers=(LSTMLayer("l0", (direction(rng, 3, 4),)),), head=(dense,))


def with_norms(seed: int = 9, scale: bool = True) -> LSTMModel:
    """LayerNormalization between two LSTMs; BatchNormalization and a softmax Dense after."""
    rng = np.random.default_rng(seed)
    layer_norm = NormLayer(
        "ln", 4, scale=rng.normal(1, 0.2, 4) if scale else None, offset=rng.normal(0, 0.2, 4)
    )
    batch_norm = NormLayer(
        "bn", 3, scale=rng.normal(1, 0.2, 3), offset=None, mean=rng.normal(0, 0.2, 3),
        var=rng.uniform(0.5, 1.5, 3), epsilon=1e-3, kind="BatchNormalization",
    )  # fmt: skip
    dense = DenseLayer("out", rng.normal(0, 0.5, (2, 3)), rng.normal(0, 0.5, 2),
                       Activation("softmax"))  # fmt: skip
    return LSTMModel(
        layers=(
            LSTMLayer("l0", (direction(rng, 3, 4),)),
            LSTMLayer("l1", (direction(rng, 4, 3),), before=(layer_norm,)),
        ),
        head=(batch_norm, dense),
    )


def sequence(model: LSTMModel, T: int = 9, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (T, model.input_size)).astype(np.float32)


def reference(model: LSTMModel, x: np.ndarray) -> np.ndarray:
    return lstmviz.run(model, x, dtype=np.float64).layers[-1].output


def assert_same_weights(a: LSTMModel, b: LSTMModel, atol: float = 1e-6) -> None:
    """Every direction's canonical arrays agree (read-back check)."""
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert len(la.directions) == len(lb.directions)
        for da, db in zip(la.directions, lb.directions, strict=True):
            assert da.reverse == db.reverse
            for name in ("W_x", "W_h", "b", "p_i", "p_f", "p_o", "W_p"):
                va, vb = getattr(da, name), getattr(db, name)
                assert (va is None) == (vb is None), name
                if va is not None:
                    np.testing.assert_allclose(vb, va, atol=atol, err_msg=name)
