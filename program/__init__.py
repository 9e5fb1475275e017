"""The contract between the stages: a .pte program, the manifest beside it, and what a manifest or a run record may
hold (schema). Export writes it, run and the store read it; it imports only `common` and, lazily, ExecuTorch."""
