"""The collector agent: tails an agency's logs and ships them, unparsed, to Kafka.

Public API: `Agent(config, identity).run(stop_event)`, `AgentConfig` (load with
`collectors.config.load_agent_config`), `Identity`, and the wire contract both sides share
(`collectors.wire`). This package imports nothing from `pipeline/` or `detectors/`
(tests/unit/test_agent_boundary.py). See collectors/README.md.
"""

from collectors.agent import Agent
from collectors.config import AgentConfig, load_agent_config
from collectors.identity import Identity, KafkaCredentials, load_identity, save_identity
from collectors.version import __version__

__all__ = [
    "__version__",
    "Agent",
    "AgentConfig",
    "Identity",
    "KafkaCredentials",
    "load_agent_config",
    "load_identity",
    "save_identity",
]
