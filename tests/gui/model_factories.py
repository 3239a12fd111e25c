"""Models built the way each reader builds them: stored arrays → canonical, with real Provenance.

The canonical arrays are derived from known stored arrays with the framework's own rule
(transpose, gate permutation, TF1 row split, bias sum, forget-bias fold), so a test can compare
the GUI's stored picture with the stored arrays themselves.
"""

from __future__ import annotations

import numpy as np

from lstmviz.core.model import (
    LayerInfo,
    LSTMDirection,
    LSTMLayer,
    LSTMModel,
    Provenance,
    Setting,
    StoredTensor,
)
from lstmviz.io.convert import PERMS, reorder_gates


def keras_like(D: int = 3, H: int = 2, seed: int = 0) -> tuple[LSTMModel, dict[str, np.ndarray]]:
    """Keras ``LSTM(H)``: kernel [D, 4H], recurrent_kernel [H, 4H], bias [4H], i,f,c,o."""
    rng = np.random.default_rng(seed)
    stored = {
        "kernel": rng.normal(size=(D, 4 * H)),
        "recurrent_kernel": rng.normal(size=(H, 4 * H)),
        "bias": rng.normal(size=4 * H),
    }
    perm = PERMS[("i", "f", "c", "o")]
    prov = Provenance(
        framework="Keras 3.15.1",
        source_format="Keras 3 .keras",
        gate_order=("i", "f", "c", "o"),
        perm=perm,
        stored=(
            StoredTensor("W_x", "layers/lstm/cell/vars/0", (D, 4 * H), transposed=True),
            StoredTensor("W_h", "layers/lstm/cell/vars/1", (H, 4 * H), transposed=True),
            StoredTensor("b", "layers/lstm/cell/vars/2", (4 * H,)),
        ),
        transforms=("kernel and recurrent_kernel transposed [in, 4H] → [4H, in]",),
        settings=(Setting("recurrent_activation", "sigmoid", assumed=False),),
    )
    w = LSTMDirection(
        W_x=reorder_gates(stored["kernel"].T, perm),
        W_h=reorder_gates(stored["recurrent_kernel"].T, perm),
        b=reorder_gates(stored["bias"], perm),
        provenance=prov,
    )
    layers = (LSTMLayer("lstm", (w,)),)
    info = (
        LayerInfo(
            "lstm",
            "LSTM",
            (("kernel", (D, 4 * H)), ("recurrent_kernel", (H, 4 * H)), ("bias", (4 * H,))),
            True,
        ),
        LayerInfo("dense", "Dense", (("kernel", (H, 1)), ("bias", (1,)))),
    )
    model = LSTMModel(
        layers,
        source_path="model.keras",
        source_format="Keras 3 .keras",
        framework="Keras 3.15.1",
        all_layers=info,
    )
    return model, stored


def tf1_like(D: int = 3, H: int = 2, seed: int = 1, forget_bias: float = 1.0):
    """TF1 ``LSTMCell``: one kernel [D + H, 4H] (x rows, then h rows), bias [4H], i,j,f,o."""
    rng = np.random.default_rng(seed)
    stored = {"kernel": rng.normal(size=(D + H, 4 * H)), "bias": rng.normal(size=4 * H)}
    perm = PERMS[("i", "j", "f", "o")]
    name = "rnn/lstm_cell"
    prov = Provenance(
        framework="TensorFlow 1 checkpoint",
        source_format="TF checkpoint V2",
        gate_order=("i", "j", "f", "o"),
        perm=perm,
        stored=(
            StoredTensor("W_x", f"{name}/kernel", (D + H, 4 * H), transposed=True, offset=0),
            StoredTensor("W_h", f"{name}/kernel", (D + H, 4 * H), transposed=True, offset=D),
            StoredTensor("b", f"{name}/bias", (4 * H,)),
        ),
        transforms=("kernel rows split: x rows 0:D, h rows D:", "forget_bias 1.0 folded into b_f"),
        settings=(Setting("forget_bias", forget_bias, assumed=True, note="not in the checkpoint"),),
    )
    b = reorder_gates(stored["bias"], perm).copy()
    b[H : 2 * H] += forget_bias
    w = LSTMDirection(
        W_x=reorder_gates(stored["kernel"][:D].T, perm),
        W_h=reorder_gates(stored["kernel"][D:].T, perm),
        b=b,
        provenance=prov,
    )
    model = LSTMModel(
        (LSTMLayer("rnn/lstm_cell", (w,)),),
        source_path="model.ckpt",
        source_format="TF checkpoint V2",
        framework="TensorFlow 1",
    )
    return model, stored


def torch_like(
    D: int = 3,
    H: int = 2,
    layers: int = 2,
    bidirectional: bool = False,
    seed: int = 2,
    size: tuple[int, int] | None = None,
) -> LSTMModel:
    """PyTorch ``nn.LSTM``: weight_ih_l{k} [4H, D], weight_hh_l{k} [4H, H], two biases."""
    rng = np.random.default_rng(seed)
    out = []
    d_in = D
    for k in range(layers):
        dirs = []
        for reverse in (False, True) if bidirectional else (False,):
            sfx = f"_l{k}" + ("_reverse" if reverse else "")
            prov = Provenance(
                framework="PyTorch 2.13",
                source_format="PyTorch zip",
                stored=(
                    StoredTensor("W_x", f"lstm.weight_ih{sfx}", (4 * H, d_in)),
                    StoredTensor("W_h", f"lstm.weight_hh{sfx}", (4 * H, H)),
                    StoredTensor("b_ih", f"lstm.bias_ih{sfx}", (4 * H,)),
                    StoredTensor("b_hh", f"lstm.bias_hh{sfx}", (4 * H,)),
                ),
                transforms=("bias_ih + bias_hh summed",),
            )
            dirs.append(
                LSTMDirection(
                    W_x=rng.normal(size=(4 * H, d_in)) * 0.3,
                    W_h=rng.normal(size=(4 * H, H)) * 0.3,
                    b=rng.normal(size=4 * H) * 0.1,
                    reverse=reverse,
                    provenance=prov,
                )
            )
        out.append(LSTMLayer(f"lstm.l{k}", tuple(dirs)))
        d_in = H * len(dirs)
    return LSTMModel(
        tuple(out), source_path="model.pt", source_format="PyTorch zip", framework="PyTorch 2.13"
    )


def big_model(H: int = 1024, D: int = 1024) -> LSTMModel:
    """W_x (4096, 1024): the size that must not freeze the window."""
    rng = np.random.default_rng(3)
    w = LSTMDirection(
        W_x=rng.standard_normal((4 * H, D), dtype=np.float32) * 0.05,
        W_h=rng.standard_normal((4 * H, H), dtype=np.float32) * 0.05,
        b=np.zeros(4 * H, np.float32),
        provenance=Provenance(framework="synthetic"),
    )
    return LSTMModel((LSTMLayer("big", (w,)),), source_path="big.npz", source_format="synthetic")


def onnx_like(D: int = 3, H: int = 2, seed: int = 4):
    """ONNX ``LSTM``: W [dirs, 4H, D], R [dirs, 4H, H], B [dirs, 8H] (Wb then Rb), i,o,f,c."""
    rng = np.random.default_rng(seed)
    stored = {
        "W": rng.normal(size=(1, 4 * H, D)),
        "R": rng.normal(size=(1, 4 * H, H)),
        "B": rng.normal(size=(1, 8 * H)),
    }
    perm = PERMS[("i", "o", "f", "c")]
    prov = Provenance(
        framework="ONNX opset 14",
        source_format="ONNX",
        gate_order=("i", "o", "f", "c"),
        perm=perm,
        stored=(
            StoredTensor("W_x", "W", (1, 4 * H, D)),
            StoredTensor("W_h", "R", (1, 4 * H, H)),
            StoredTensor("b", "B", (1, 8 * H)),
        ),
        transforms=("gate blocks reordered i,o,f,c → i,f,g,o", "B[:4H] + B[4H:] summed"),
    )
    w = LSTMDirection(
        W_x=reorder_gates(stored["W"][0], perm),
        W_h=reorder_gates(stored["R"][0], perm),
        b=reorder_gates(stored["B"][0, : 4 * H] + stored["B"][0, 4 * H :], perm),
        provenance=prov,
    )
    model = LSTMModel(
        (LSTMLayer("lstm", (w,)),),
        source_path="model.onnx",
        source_format="ONNX",
        framework="ONNX opset 14",
    )
    return model, stored
