"""Keras readers: legacy .h5, .keras archives, .weights.h5 and sharded weights."""
