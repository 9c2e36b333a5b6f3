"""socpipe's plumbing: configuration, Kafka and Elasticsearch I/O, coverage, the CLI and the local stack."""

__version__ = "0.1.0"
