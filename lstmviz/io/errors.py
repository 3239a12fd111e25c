"""The one error a file can cause."""


class LoadError(Exception):
    """A weights file could not be turned into an LSTM model.

    The message is one line: the file, what is wrong, and what would work, e.g.
    ``k.h5: HDF5 file has no LSTM layer (found Dense, Conv1D); lstmviz shows LSTM layers only``.
    """


class ChoiceRequired(LoadError):
    """The file is fine but ambiguous: the caller must pass ``option=<one of choices>``.

    Raised e.g. when a PyTorch file holds several LSTMs (``prefix``) or a raw array file fits
    several layouts (``layout``). The GUI catches it and asks the user.
    """

    def __init__(self, message: str, option: str, choices: tuple[str, ...]) -> None:
        super().__init__(message)
        self.option = option
        self.choices = choices
