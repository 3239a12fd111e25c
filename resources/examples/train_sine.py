"""Train the bundled example: a 2-layer LSTM predicting the next value of a noisy sum of sines.

Run from the repository root (about 20 s on a laptop CPU)::

    KERAS_BACKEND=torch python resources/examples/train_sine.py

Writes

- ``sine_lstm.pt``: the trained ``nn.LSTM(1, 24, num_layers=2)`` + ``Linear(24, 1)`` state_dict
  (``torch.save``);
- ``sine_lstm.keras``: the same trained weights in a Keras 3 model (kernels transposed,
  ``bias_ih + bias_hh`` summed), checked to give the same predictions; the model ``lstmviz``
  opens with no argument, and with the ``.pt`` the two readers can be compared on one network;
- three example input sequences with one column each (the model's input width is 1):
  ``sine_sequence.csv`` (the kind of signal it was trained on, opened by default),
  ``chirp_sequence.csv`` (a sine whose frequency rises) and ``step_sequence.csv`` (a flat
  signal with a jump, to watch the forget gate react).

torch and keras are needed only here, never by lstmviz itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 1234
WINDOW = 40  # steps seen before predicting the next value
UNITS = 24


class SineLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, UNITS, num_layers=2, batch_first=True)
        self.head = nn.Linear(UNITS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(y[:, -1])


def signal(t: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """A sum of two sines with a random phase, plus Gaussian noise."""
    phase = rng.uniform(0, 2 * np.pi)
    clean = 0.6 * np.sin(0.25 * t + phase) + 0.3 * np.sin(0.07 * t + 2 * phase)
    return clean + noise * rng.standard_normal(t.shape)


def make_windows(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = np.arange(WINDOW + 1, dtype=np.float64)
    series = np.stack([signal(t + rng.uniform(0, 500), rng) for _ in range(n)]).astype("float32")
    return torch.from_numpy(series[:, :WINDOW, None]), torch.from_numpy(series[:, WINDOW:])


def train(rng: np.random.Generator) -> SineLSTM:
    x_train, y_train = make_windows(rng, 1024)
    x_val, y_val = make_windows(rng, 256)
    model = SineLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(12):
        perm = torch.randperm(len(x_train))
        for k in range(0, len(x_train), 32):
            idx = perm[k : k + 32]
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = nn.functional.mse_loss(model(x_val), y_val).item()
        print(f"epoch {epoch + 1}: validation mse {val:.5f}")
    naive = nn.functional.mse_loss(x_val[:, -1], y_val).item()
    print(f"repeat-last-value baseline {naive:.5f}")
    return model.eval()


def save_keras_copy(model: SineLSTM, probe: torch.Tensor) -> None:
    """The same weights in Keras 3: kernel = weight_ih.T, bias = bias_ih + bias_hh (i,f,c,o)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    inputs = keras.Input(shape=(None, 1), name="signal")
    x = keras.layers.LSTM(UNITS, return_sequences=True, name="lstm")(inputs)
    x = keras.layers.LSTM(UNITS, name="lstm_1")(x)
    outputs = keras.layers.Dense(1, name="head")(x)
    k_model = keras.Model(inputs, outputs, name="sine_lstm")
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for layer in range(2):
        k_model.get_layer("lstm" if layer == 0 else "lstm_1").set_weights(
            [
                sd[f"lstm.weight_ih_l{layer}"].T,
                sd[f"lstm.weight_hh_l{layer}"].T,
                sd[f"lstm.bias_ih_l{layer}"] + sd[f"lstm.bias_hh_l{layer}"],
            ]
        )
    k_model.get_layer("head").set_weights([sd["head.weight"].T, sd["head.bias"]])
    with torch.no_grad():
        want = model(probe).numpy()
    got = np.asarray(k_model.predict(probe.numpy(), verbose=0))
    np.testing.assert_allclose(got, want, atol=1e-5)
    k_model.save(HERE / "sine_lstm.keras")


def write_sequences(rng: np.random.Generator) -> None:
    t = np.arange(120, dtype=np.float64)
    sequences = {
        "sine_sequence.csv": signal(t, rng),
        "chirp_sequence.csv": 0.8 * np.sin(0.02 * t + 0.0025 * t**2),
        "step_sequence.csv": np.where(t < 60, -0.5, 0.7) + 0.02 * rng.standard_normal(t.shape),
    }
    for name, values in sequences.items():
        np.savetxt(HERE / name, values[:, None], fmt="%.6f")


def main() -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # bit-for-bit reproducible on one machine
    rng = np.random.default_rng(SEED)
    model = train(rng)
    torch.save(model.state_dict(), HERE / "sine_lstm.pt")
    save_keras_copy(model, make_windows(rng, 8)[0])
    write_sequences(rng)


if __name__ == "__main__":
    main()
