"""Per-recipe quantization code: module selection (--keep-fp32), embedding tables, PT2E static quantization."""
