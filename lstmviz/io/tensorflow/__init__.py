"""TensorFlow readers: TF1/TF2 checkpoints, their .meta graphs and cells."""
