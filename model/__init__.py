"""MobileBERT, its IB-BERT teacher and the distillation trainer, in plain PyTorch."""
