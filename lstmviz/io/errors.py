"""The one error a file can cause, and the one place its message is made safe to show.

Messages quote file content (layer names, pickle globals, JSON keys, ONNX dims), and a hostile
file controls that text: a newline makes a two-line error, ``\\x1b[31m`` recolours the user's
terminal, a NUL truncates a C string in Qt, an 840,067-character dims list floods the window.
Rather than trusting every reader to quote carefully, ``LoadError``'s constructor passes every
message through ``one_line``, so whatever path raises it (any reader, ``load_model``'s wrapper,
``ChoiceRequired``) the text users see is one printable line of at most ``MAX_MESSAGE``
characters.
"""

from __future__ import annotations

#: Longest message shown; longer ones keep their start and end around an ellipsis.
MAX_MESSAGE = 300
ELLIPSIS = "…"
#: How much of the end an elided message keeps: the "what would work" part sits there.
_TAIL = 80

_WHITESPACE = {"\t": " ", "\n": "\\n", "\r": "\\r"}


def _escape_char(ch: str) -> str:
    if ch in _WHITESPACE:
        return _WHITESPACE[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def one_line(text: object, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one printable line of at most ``limit`` characters.

    Control characters, line and paragraph separators, lone surrogates and every other
    character ``str.isprintable`` rejects are written as Python escapes (``\\n``, ``\\x00``,
    ``\\u2028``); a tab becomes a space. A terminal escape sequence thus reads as the text
    ``\\x1b[31m`` and never recolours anything. A longer result keeps its start and its last
    ``_TAIL`` characters around "…". Idempotent, so a re-raised or pickled message stays as is.
    """
    s = str(text)
    if len(s) > 4 * limit:  # escape only what can be shown (an 840,067-character dims list)
        s = s[: 2 * limit] + ELLIPSIS + s[len(s) - 2 * limit :]
    if not s.isprintable():
        s = "".join(c if c.isprintable() else _escape_char(c) for c in s)
    if len(s) > limit:
        tail = min(_TAIL, limit // 3)
        s = s[: limit - tail - len(ELLIPSIS)] + ELLIPSIS + s[len(s) - tail :]
    return s


class LoadError(Exception):
    """A weights file could not be turned into an LSTM model.

    The message is one line: the file, what is wrong, and what would work, e.g.
    ``k.h5: HDF5 file has no LSTM layer (found Dense, Conv1D); lstmviz shows LSTM layers only``.
    The constructor makes it so whatever the caller passed (see ``one_line``).
    """

    def __init__(self, *args: object) -> None:
        if args:
            args = (one_line(args[0]), *args[1:])
        super().__init__(*args)

    def __str__(self) -> str:
        return one_line(super().__str__()) if self.args else type(self).__name__


class ChoiceRequired(LoadError):
    """The file is fine but ambiguous: the caller must pass ``option=<one of choices>``.

    Raised e.g. when a PyTorch file holds several LSTMs (``prefix``) or a raw array file fits
    several layouts (``layout``). The GUI catches it and asks the user.
    """

    def __init__(self, message: str, option: str, choices: tuple[str, ...]) -> None:
        super().__init__(message)
        self.option = option
        self.choices = choices

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle as type(*args); keep option and choices across processes.
        return (type(self), (self.args[0], self.option, self.choices))
