"""Train the bracket example: a character-level LSTM that reads a bracket language.

Run from the repository root (about 30 s on a laptop CPU; seeded, so the files come out the same
on one machine)::

    python resources/examples/brackets/train_brackets.py

Each line of the language is letters ``abcd`` with nested brackets ``( )`` (depth at most 4) and a
full stop at the end. The model predicts the next character, and a ``)`` or the final ``.`` can only
be predicted by knowing how deep the brackets are: so some unit learns to count nesting depth, the
pattern LSTMVis' select → match workflow is demonstrated on (Strobelt et al. 2018, Fig. 1).

Writes, beside this script:

- ``brackets_lstm.pt``: the ``state_dict`` of ``Embedding(8, 8) → LSTM(8, 32) → Linear(32, 8)``
  (``torch.save``); lstmviz takes ``embed.weight`` as the embedding table of the token ids;
- ``brackets_vocab.txt``: the 8 characters, one per line (id = line number; the last, a space,
  is the padding);
- ``brackets_corpus.txt``: 200 held-out lines (one document each), a few thousand characters;
- ``brackets_depth.txt``: the nesting depth of every character of the corpus, one digit per
  character, line by line (an opening bracket counts as inside, and so does its closing one);
- ``brackets_sequence.csv``: the token ids of the corpus' first 5 lines, one per row (what the
  debugger opens for ``lstmviz --example brackets``).

torch is needed only here, never by lstmviz itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 7
CHARS = "abcd(). "  # id = position; the space pads training batches and never occurs in lines
PAD = CHARS.index(" ")
UNITS = 32
MAX_DEPTH = 4


def make_line(rng: np.random.Generator) -> tuple[str, list[int]]:
    """One line of the language and the nesting depth of each of its characters."""
    out: list[str] = []
    depths: list[int] = []
    depth = 0
    n = int(rng.integers(10, 36))
    while len(out) < n or depth > 0:
        r = rng.random()
        if len(out) >= n or (r < 0.14 and depth > 0):
            depths.append(depth)  # a closing bracket is still inside
            out.append(")")
            depth -= 1
        elif r < 0.30 and depth < MAX_DEPTH and len(out) < n - 2:
            depth += 1
            out.append("(")
            depths.append(depth)
        else:
            out.append("abcd"[int(rng.integers(4))])
            depths.append(depth)
    out.append(".")
    depths.append(0)
    return "".join(out), depths


class BracketLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(CHARS), 8)
        self.lstm = nn.LSTM(8, UNITS, batch_first=True)
        self.head = nn.Linear(UNITS, len(CHARS))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.embed(ids))
        return self.head(y)


def batch(lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-character targets, padded; padding is not scored."""
    T = max(len(s) for s in lines)
    x = torch.full((len(lines), T), PAD, dtype=torch.long)
    y = torch.full((len(lines), T), -100, dtype=torch.long)
    for k, s in enumerate(lines):
        ids = torch.tensor([CHARS.index(c) for c in s])
        x[k, : len(s)] = ids
        y[k, : len(s) - 1] = ids[1:]
    return x, y


def train(rng: np.random.Generator) -> BracketLSTM:
    torch.manual_seed(SEED)
    model = BracketLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
    val_x, val_y = batch([make_line(rng)[0] for _ in range(256)])
    for step in range(1, 801):
        x, y = batch([make_line(rng)[0] for _ in range(64)])
        opt.zero_grad()
        loss = loss_fn(model(x).reshape(-1, len(CHARS)), y.reshape(-1))
        loss.backward()
        opt.step()
        if step % 100 == 0:
            with torch.no_grad():
                val = loss_fn(model(val_x).reshape(-1, len(CHARS)), val_y.reshape(-1)).item()
            print(f"step {step}: validation cross-entropy {val:.3f}")
    return model.eval()


def main() -> None:
    rng = np.random.default_rng(SEED)
    model = train(rng)
    torch.save(model.state_dict(), HERE / "brackets_lstm.pt")
    (HERE / "brackets_vocab.txt").write_text("\n".join(CHARS) + "\n", encoding="utf-8")
    lines, depths = zip(*(make_line(rng) for _ in range(200)), strict=True)
    (HERE / "brackets_corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / "brackets_depth.txt").write_text(
        "\n".join("".join(map(str, d)) for d in depths) + "\n", encoding="utf-8"
    )
    ids = [CHARS.index(c) for c in "".join(lines[:5])]
    (HERE / "brackets_sequence.csv").write_text(
        "token\n" + "\n".join(map(str, ids)) + "\n", encoding="utf-8"
    )
    # Which unit counts depth: the correlation of each unit's h with the depth over the corpus.
    with torch.no_grad():
        hs, ds = [], []
        for s, d in zip(lines, depths, strict=True):
            ids_t = torch.tensor([[CHARS.index(c) for c in s]])
            hs.append(model.lstm(model.embed(ids_t))[0][0].numpy())
            ds.extend(d)
    h, depth = np.concatenate(hs), np.asarray(ds, dtype=float)
    corr = [abs(np.corrcoef(h[:, u], depth)[0, 1]) for u in range(UNITS)]
    best = int(np.argmax(corr))
    print(f"unit {best} follows the nesting depth (|r| = {corr[best]:.2f})")
    print(f"corpus: {len(lines)} lines, {sum(len(s) for s in lines)} characters")


if __name__ == "__main__":
    main()
