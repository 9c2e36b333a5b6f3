"""The default time zone of log timestamps, on its own so that a reader of the constant (the SOC's
time helpers, the CLI's option defaults) does not load the wire contract's hashing and classes.
Part of the wire contract (`collectors.wire` re-exports it)."""

from __future__ import annotations

# Zone of log timestamps that carry no offset, unless a source's config names another (the province's).
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
