"""Click commands, one file per area; harness/cli.py assembles them into the `harness` group."""
