"""The local stack: the real servers socpipe needs on a machine without Docker.

Apache Kafka (KRaft, jars from Maven Central, run on Java 17), Elasticsearch 8 (Elastic's
integration-test distribution from Maven Central, run on Java 17 as its own system user) and
Prometheus (Debian's package). Every server binds to 127.0.0.1, has a protocol-level readiness check with a
deadline, and keeps its pid, log and data under the state directory (default `.socpipe/stack/`).
"""

from pipeline.stack.manager import Stack
from pipeline.stack.plan import StackError

__all__ = ["Stack", "StackError"]
