"""Deprecated alias of `collectors.wire` (the wire contract now lives on the agent side).

Kept only so branches written before the move still import; new code imports `collectors.wire`.
"""

from collectors.wire import (
    HEADER_DATASET,
    HEADER_LINES,
    HEARTBEAT_TOPIC,
    RAW_TOPIC,
    WIRE_VERSION,
    Heartbeat,
    LineBatch,
    LogLine,
    SourceStatus,
    sign_heartbeat,
    verify_heartbeat,
)
from pipeline.detector_config import DEAD_LETTER_TOPIC

__all__ = [
    "DEAD_LETTER_TOPIC",
    "HEADER_DATASET",
    "HEADER_LINES",
    "HEARTBEAT_TOPIC",
    "RAW_TOPIC",
    "WIRE_VERSION",
    "Heartbeat",
    "LineBatch",
    "LogLine",
    "SourceStatus",
    "sign_heartbeat",
    "verify_heartbeat",
]
