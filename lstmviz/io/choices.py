"""Whether a load may stop and ask which of several LSTMs in a file to open.

Some files hold more than one thing lstmviz could open. Where nothing says which one is meant
(two PyTorch LSTM modules, several TF1 scopes) every load raises ``ChoiceRequired`` naming the
option. Where the file has a natural default — a Keras model whose LSTMs form several chains
(parallel branches, a seq2seq decoder fed by a second input) opens its first chain, as it always
has — a script gets that default with a note, and only a caller that can ask (the window, with
its choice dialog) passes ``load_model(..., ask_choices=True)`` to be asked instead.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_ASK: contextvars.ContextVar[bool] = contextvars.ContextVar("lstmviz_ask_choices", default=False)


@contextlib.contextmanager
def asking(ask: bool) -> Iterator[None]:
    """Readers called inside may raise ``ChoiceRequired`` where they have a default."""
    token = _ASK.set(bool(ask))
    try:
        yield
    finally:
        _ASK.reset(token)


def may_ask() -> bool:
    return _ASK.get()
