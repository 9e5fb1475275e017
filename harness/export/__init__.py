"""Checkpoint -> program: torch.export, recipes and quantization, XNNPACK lowering, manifest, numerics."""
