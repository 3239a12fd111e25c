"""What a Keras file says about its layers: versions, activations and the layer list.

Shared by the legacy HDF5 reader and the Keras 3 readers (CONVENTIONS §3.1–3.2). The Keras
version decides two things weights cannot show: which ``hard_sigmoid`` the file means (slope
0.2 in Keras 1/2/tf.keras, 1/6 in Keras 3) and, for weights-only files, the default
``recurrent_activation`` (hard_sigmoid before Keras 2.3 and in tf.keras under TF 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmviz.core.activations import Activation
from lstmviz.core.model import Setting
from lstmviz.io.errors import LoadError
from lstmviz.io.keras.graph import MODEL_KINDS, LayerSpec, flatten_layers, to_snake_case

__all__ = ["MODEL_KINDS", "LayerSpec", "flatten_layers", "to_snake_case"]  # re-exported

MAX_CONFIG_BYTES = 16 << 20  # a config of thousands of layers is a few MB; JSON parses to ~5x

#: Keras activation names (as configs store them) → lstmviz names; hard_sigmoid is decided by
#: the Keras major version and is not in this table on purpose.
_ACTIVATIONS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "relu6": "relu6",
    "linear": "linear",
    "softsign": "softsign",
    "softplus": "softplus",
    "elu": "elu",
    "selu": "selu",
    "exponential": "exponential",
    "swish": "swish",
    "silu": "swish",
    "gelu": "gelu",  # approximate=False, Keras' default for the string name
    "mish": "mish",
    "hard_silu": "hard_silu",  # Keras 3: x · relu6(x + 3) / 6
    "hard_swish": "hard_silu",
    "log_sigmoid": "log_sigmoid",
    "hard_tanh": "hard_tanh",
    "tanh_shrink": "tanh_shrink",
    "celu": "celu",
    "sparse_plus": "sparse_plus",
    "sparse_sigmoid": "sparse_sigmoid",
    "squareplus": "squareplus",
    "soft_shrink": "soft_shrink",
    "hard_shrink": "hard_shrink",
}
#: Activations of a whole vector: a Dense head may use them, an LSTM cannot here.
_VECTOR_ACTIVATIONS = {"softmax": "softmax", "log_softmax": "log_softmax"}
#: Layers that do nothing at inference, so LSTMs around them still feed each other directly.
IDENTITY_LAYERS = frozenset(
    {
        "InputLayer",
        "Dropout",
        "SpatialDropout1D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Masking",
    }
)
LSTM_KINDS = frozenset({"LSTM", "CuDNNLSTM"})
#: Recurrent layers lstmviz runs: the LSTMs (``layers``) and the GRU and plain RNN (``gru``).
RUNNABLE_KINDS = LSTM_KINDS | {"GRU", "CuDNNGRU", "SimpleRNN"}
NOT_LSTM_RNNS = {
    "ConvLSTM1D": "convolutional LSTM, not supported",
    "ConvLSTM2D": "convolutional LSTM, not supported",
    "ConvLSTM3D": "convolutional LSTM, not supported",
}


@dataclass(frozen=True)
class KerasVersion:
    """A file's ``keras_version`` and what it implies.

    ``tf``: written by tf.keras (a ``-tf`` suffix, or Keras 2.4+ which only ships in TF).
    ``tf1``: tf.keras under TF 1.x, known only from weight names (no ``lstm_cell`` scope).
    """

    text: str
    major: int
    minor: int
    patch: int
    tf: bool = False
    tf1: bool = False
    guessed: bool = False  # no keras_version in the file
    #: Who writes a file of this layout when that is all the file tells (``label``).
    writers: str = ""

    @property
    def label(self) -> str:
        """E.g. "Keras 2.2.4", "tf.keras 2.15.0", "Keras 3.15.1"."""
        if self.guessed and self.writers:
            return f"{self.writers} (version not recorded)"
        number = self.text.removesuffix("-tf") or f"{self.major}.x"
        who = "tf.keras" if self.tf else "Keras"
        return f"{who} {number}" + (" (version not recorded)" if self.guessed else "")

    @property
    def hard_sigmoid(self) -> str:
        return "hard_sigmoid_k3" if self.major >= 3 else "hard_sigmoid_k2"

    def default_recurrent_activation(self) -> tuple[str, str]:
        """(Keras name, why) of the LSTM default recurrent_activation for this version."""
        if self.major >= 3:
            return "sigmoid", "Keras 3 default"
        if self.major < 2:
            return "hard_sigmoid", "Keras 1 default"
        if self.tf1:
            return "hard_sigmoid", "tf.keras under TF 1.x default"
        if self.tf or (self.minor, self.patch) >= (3, 0):
            return "sigmoid", "default since Keras 2.3.0 / tf.keras v2"
        return "hard_sigmoid", "Keras 2.0.0-2.2.5 default"


def parse_version(raw: object, *, default_major: int = 2) -> KerasVersion:
    """Parse ``keras_version`` ("2.2.4", "2.2.4-tf", b"3.15.1"); missing → guessed."""
    text = decode_text(raw).strip() if raw is not None else ""
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        return KerasVersion("", default_major, 0, 0, guessed=True)
    major, minor, patch = int(m[1]), int(m[2]), int(m[3] or 0)
    tf = text.endswith("-tf") or (major == 2 and (minor, patch) >= (4, 0))
    return KerasVersion(text, major, minor, patch, tf=tf)


def decode_text(raw: object) -> str:
    """HDF5 attributes come back as str, bytes or 0-d arrays of either."""
    if hasattr(raw, "tolist") and not isinstance(raw, (bytes, str)):
        raw = raw.tolist()  # type: ignore[union-attr]
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    return str(raw)


def read_small_file(path: Path, limit: int, file: str, too_large: str) -> bytes:
    """A side file (config, metadata, shard index) read with a size bound: at most ``limit``
    bytes, else LoadError ``{file}: {too_large}``; never a whole huge file into memory."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise LoadError(f"{file}: cannot read {path.name} ({exc})") from exc
    if len(data) > limit:
        raise LoadError(f"{file}: {too_large}")
    return data


def load_json(raw: object, what: str, file: str) -> Any:
    """Parse JSON from an attribute or zip member, as a one-line LoadError if it is not JSON."""
    text = decode_text(raw)
    if len(text) > MAX_CONFIG_BYTES:
        raise LoadError(f"{file}: {what} is {len(text)} bytes, too large for a model config")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise LoadError(
            f"{file}: {what} is not valid JSON ({str(exc).splitlines()[0][:80]}); "
            "re-save the model with Keras"
        ) from exc


def activation_name(value: object) -> str:
    """The plain name of a serialized activation (a string, or a Keras 3 dict); None is
    Keras' ``activations.get(None)``, the identity."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("config", "registered_name", "class_name"):
            v = value.get(key)
            if isinstance(v, str) and v not in ("function", "__lambda__"):
                return v.split(">")[-1]
        return json.dumps(value)[:60]
    return str(value)


def resolve_activation(
    name: str, version: KerasVersion, file: str, layer: str, *, vector: bool = False
) -> Activation:
    """Map a Keras activation name to an exact lstmviz one (hard_sigmoid by version);
    ``vector``: also softmax and log_softmax (over the last axis, as Keras applies them)."""
    base = name.rsplit(".", 1)[-1]
    if vector and base in _VECTOR_ACTIVATIONS:
        return Activation(_VECTOR_ACTIVATIONS[base])
    if base == "hard_sigmoid":
        return Activation(version.hard_sigmoid)
    if base == "leaky_relu":
        # Keras 3 negative_slope and tf.keras' tf.nn.leaky_relu alpha both default to 0.2.
        return Activation("leaky_relu", alpha=0.2)
    if base in _ACTIVATIONS:
        return Activation(_ACTIVATIONS[base])
    if base in _VECTOR_ACTIVATIONS:
        raise LoadError(
            f"{file}: layer {layer!r} uses activation {name!r} across units; lstmviz runs it "
            "only in a Dense head, an LSTM needs an element-wise activation"
        )
    raise LoadError(
        f"{file}: layer {layer!r} uses activation {name!r}, which lstmviz does not know; "
        f"supported: hard_sigmoid, leaky_relu, {', '.join(sorted(_ACTIVATIONS))}"
    )


@dataclass(frozen=True)
class LSTMSettings:
    """The hyperparameters of one Keras LSTM layer (or one direction of a Bidirectional)."""

    units: Setting
    activation: Setting
    recurrent_activation: Setting
    use_bias: Setting
    return_sequences: Setting
    go_backwards: Setting
    unit_forget_bias: Setting | None = None

    def all(self) -> tuple[Setting, ...]:
        out = (
            self.units,
            self.activation,
            self.recurrent_activation,
            self.use_bias,
            self.return_sequences,
            self.go_backwards,
        )
        return out if self.unit_forget_bias is None else (*out, self.unit_forget_bias)


def _read(cfg: Mapping[str, Any], key: str, default: Any, why: str) -> Setting:
    if key in cfg:
        return Setting(key, cfg[key], assumed=False, note="read from the model config")
    return Setting(key, default, assumed=True, note=why)


def lstm_settings(
    cfg: Mapping[str, Any] | None, version: KerasVersion, kind: str, units: int
) -> LSTMSettings:
    """Settings from a layer config; without one (weights-only) every default is assumed."""
    rec_default, rec_why = version.default_recurrent_activation()
    if kind == "CuDNNLSTM":  # fixed by cuDNN, not configurable
        rec_default, rec_why = "sigmoid", "fixed by cuDNN"
    if cfg is None:
        why = "weights-only file: no config"
        return LSTMSettings(
            Setting("units", units, assumed=False, note="from the weight shapes"),
            Setting("activation", "tanh", assumed=True, note=f"{why}; Keras default"),
            Setting("recurrent_activation", rec_default, assumed=True, note=f"{why}; {rec_why}"),
            Setting("use_bias", True, assumed=False, note="from the weights present"),
            Setting("return_sequences", True, assumed=True, note=f"{why}; all steps shown"),
            Setting("go_backwards", False, assumed=True, note=f"{why}; Keras default"),
        )
    missing = "not in the config; Keras default"
    act = _read(cfg, "activation", "tanh", missing)
    rec = _read(cfg, "recurrent_activation", rec_default, f"not in the config; {rec_why}")
    if kind == "CuDNNLSTM":
        act = Setting("activation", "tanh", assumed=False, note="fixed by cuDNN")
        rec = Setting("recurrent_activation", "sigmoid", assumed=False, note="fixed by cuDNN")
    return LSTMSettings(
        Setting("units", units, assumed=False, note="read from the model config"),
        act,
        rec,
        _read(cfg, "use_bias", True, missing),
        _read(cfg, "return_sequences", False, missing),
        _read(cfg, "go_backwards", False, missing),
        _forget_bias_note(cfg),
    )


def _forget_bias_note(cfg: Mapping[str, Any]) -> Setting | None:
    """``unit_forget_bias`` only initialises b_f to 1 before training: the trained bias is
    stored, so nothing is added at load time (unlike TF1's runtime forget_bias)."""
    if "unit_forget_bias" not in cfg:
        return None
    return Setting(
        "unit_forget_bias",
        cfg["unit_forget_bias"],
        assumed=False,
        note="initializer only: the stored bias already holds it, nothing is added",
    )


_FLAGS = ("use_bias", "return_sequences", "go_backwards", "return_state", "unroll", "stateful")


def check_flags(cfg: Mapping[str, Any] | None, layer: str, file: str) -> None:
    """Keras writes these as JSON booleans; anything else ("false") is a damaged config."""
    for key in _FLAGS:
        value = cfg.get(key, False) if cfg is not None else False
        if not isinstance(value, bool):
            raise LoadError(
                f"{file}: layer {layer!r} config has {key}={value!r}, expected true or false"
            )


_LOW_PRECISION = ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")


def precision_note(cfg: Mapping[str, Any] | None) -> list[str]:
    """A float16/bfloat16 dtype policy: Keras computes the layer in half precision, lstmviz
    in float32, so Keras' own outputs differ from the float32 reference by ~1e-3."""
    policy = cfg.get("dtype") if cfg is not None else None
    if isinstance(policy, Mapping):
        inner = policy.get("config")
        policy = inner.get("name") if isinstance(inner, Mapping) else None
    if policy not in _LOW_PRECISION:
        return []
    compute = str(policy).removeprefix("mixed_")
    return [
        f"dtype policy {policy!r}: Keras computes this layer in {compute}; lstmviz computes in "
        "float32 (Keras' outputs differ by about 1e-3)"
    ]
