"""Development-only tools, not in the installed distribution (see `exclude` in pyproject.toml).

`demo` (`socpipe demo`), `simulate` (`socpipe coverage simulate`: fake agents for an inventory) and
`synthetic` (generated web events for tests and benchmarks). Together with `pipeline.stack` (the
local Kafka / Elasticsearch / Prometheus stack) they run from a repository checkout
(`pip install -e .`, `make demo`, `make test`); a wheel install of socpipe-soc has none of them.
"""
