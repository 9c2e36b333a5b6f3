"""The collector agent: tails an agency's logs and ships them, unparsed, to Kafka.

Public API: `Agent(config, identity).run(stop_event)`, `AgentConfig` (load with
`collectors.config.load_agent_config`), `Identity`, and the wire contract both sides share
(`collectors.wire`). This package imports nothing from `pipeline/` or `detectors/`
(tests/unit/test_agent_boundary.py). See collectors/README.md.
"""

from __future__ import annotations

from collectors.lazy import lazy_exports

# Names resolve on first use (PEP 562): the SOC side imports `collectors.wire` on every start, and
# should not pay for the agent, its config loader and Kafka client when it does.
_EXPORTS = {
    "__version__": "collectors.version",
    "Agent": "collectors.agent",
    "AgentConfig": "collectors.config",
    "load_agent_config": "collectors.config",
    "Identity": "collectors.identity",
    "KafkaCredentials": "collectors.identity",
    "load_identity": "collectors.identity",
    "save_identity": "collectors.identity",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
