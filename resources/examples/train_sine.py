"""Train the bundled example: two stacked LSTMs predicting the next value of a noisy sum of sines.

Run from the repository root (about 30 s on a laptop CPU)::

    KERAS_BACKEND=torch python resources/examples/train_sine.py

Writes ``sine_lstm.keras`` (the model ``lstmviz`` opens with no argument) and three example
input sequences with one column each (the model's input width is 1):

- ``sine_sequence.csv``: the same kind of signal the model was trained on (opened by default);
- ``chirp_sequence.csv``: a sine whose frequency rises, to watch the model lose track;
- ``step_sequence.csv``: a flat signal with a jump, to watch the forget gate react.

Keras and torch are needed only here, never by lstmviz itself.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 1234
WINDOW = 40  # steps seen before predicting the next value
UNITS = (24, 16)


def signal(t: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """A sum of two sines with a random phase, plus Gaussian noise."""
    phase = rng.uniform(0, 2 * np.pi)
    clean = 0.6 * np.sin(0.25 * t + phase) + 0.3 * np.sin(0.07 * t + 2 * phase)
    return clean + noise * rng.standard_normal(t.shape)


def make_windows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(WINDOW + 1, dtype=np.float64)
    series = np.stack([signal(t + rng.uniform(0, 500), rng) for _ in range(n)])
    return series[:, :WINDOW, None].astype("float32"), series[:, WINDOW:].astype("float32")


def build_model() -> keras.Model:
    inputs = keras.Input(shape=(None, 1), name="signal")
    x = keras.layers.LSTM(UNITS[0], return_sequences=True, name="lstm_encoder")(inputs)
    x = keras.layers.LSTM(UNITS[1], return_sequences=True, name="lstm_decoder")(x)
    outputs = keras.layers.Dense(1, name="next_value")(x[:, -1, :])
    return keras.Model(inputs, outputs, name="sine_lstm")


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
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    x_train, y_train = make_windows(rng, 1024)
    x_val, y_val = make_windows(rng, 256)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=2, validation_data=(x_val, y_val))
    naive = float(np.mean((x_val[:, -1, 0] - y_val[:, 0]) ** 2))
    print(
        f"validation mse {model.evaluate(x_val, y_val, verbose=0):.5f}"
        f" (repeat-last baseline {naive:.5f})"
    )
    # Save an uncompiled copy: the file then holds only the weights lstmviz shows, no optimizer.
    plain = build_model()
    plain.set_weights(model.get_weights())
    plain.save(HERE / "sine_lstm.keras")
    write_sequences(rng)


if __name__ == "__main__":
    main()
