"""The detector worker, in parts (see ARCHITECTURE.md):

* `stages`: the two stage processors, pure (records in; alert plan, correlation inputs, rejects out);
* `alerting`: suppression decisions (`plan_alerts`) and the plan types;
* `sink`: the alert sink (build documents, index with retries and pause, dead letters, notify);
* `intake`, `state`, `models`: stage 1's verification and dedup, stage 2's partition state, anomaly models;
* `rebalance`, `handover`, `assign`, `balance`: which partitions each stage holds, their restore from the
  state topic after a rebalance, state kept through one, and the load-balancing assignor;
* `outputs`: correlation inputs, quarantined records, dead letters and state snapshots to Kafka;
* `runner`: `DetectorWorker`, which builds the Kafka and Elasticsearch clients and wires the parts.
"""

from pipeline.worker.runner import DetectorWorker
from pipeline.worker.state import PartitionState, RebalanceListener

__all__ = ["DetectorWorker", "PartitionState", "RebalanceListener"]
