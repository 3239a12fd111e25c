"""Suite-wide setup: headless Qt and the Keras backend are chosen before anything imports them."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "torch")
