"""PyTorch readers: torch.save archives, TorchScript, torch.export and state dicts."""
