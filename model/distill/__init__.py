"""Distillation: layer-wise transfer losses, training strategies and the trainer."""
