"""Normalisation: raw log lines -> flat ECS events (dotted keys, e.g. ``"source.ip"``).

Public API::

    from detectors.normalise import Normaliser, parse_line
    n = Normaliser(default_timezone="Asia/Ho_Chi_Minh")
    events = n.normalise_batch(batch)   # pipeline.records.LineBatch -> list of events
    events += n.flush()                 # auditd events still waiting for records
    ev = parse_line(text, dataset=None, timezone="Asia/Ho_Chi_Minh", path=None, line_no=0)
"""

from detectors.normalise.core import parse_line
from detectors.normalise.normaliser import Normaliser

__all__ = ["Normaliser", "parse_line"]
