"""Suite-wide setup: headless Qt and the Keras backend are chosen before anything imports them."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "torch")

import sys
from pathlib import Path

# Test helpers shared across folders (``bounded``: loads under a memory cap and a time limit).
sys.path.insert(0, str(Path(__file__).parent))


import gc

import pytest


@pytest.fixture(autouse=True)
def _gc_unfrozen():
    """Windows freeze what is alive out of full collections (``gui.gc_pauses``); a test's
    closed windows must still be collected, as before, once it ends."""
    yield
    gc.unfreeze()
