"""The detector worker (`from pipeline.worker import DetectorWorker`); see `core` for the design."""

from pipeline.worker.core import DetectorWorker, PartitionState, RebalanceListener

__all__ = ["DetectorWorker", "PartitionState", "RebalanceListener"]
