"""HTTP triage API: the `socpipe alerts` operations behind per-analyst tokens and roles; the workflow
rules they share with the CLI (`workflow.py`, pure)."""
