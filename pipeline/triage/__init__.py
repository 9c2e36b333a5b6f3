"""HTTP triage API: the `socpipe alerts` operations behind per-analyst tokens and roles."""
