"""Bare arrays: .npz/.npy and .safetensors, with their layouts guessed from names or shapes."""
