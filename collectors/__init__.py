"""The collector agent: tails an agency's logs and ships them, unparsed, to Kafka.

Public API: `Agent(config, identity).run(stop_event)`, `AgentConfig` (load with
`collectors.config.load_agent_config`), `Identity`, and `collectors.dedup.SeenSequences` for the SOC
side's duplicate removal. See collectors/README.md.
"""

from collectors.agent import Agent
from collectors.config import AgentConfig, load_agent_config
from collectors.identity import Identity, KafkaCredentials, load_identity, save_identity

__all__ = ["Agent", "AgentConfig", "Identity", "KafkaCredentials", "load_agent_config", "load_identity",
           "save_identity"]
