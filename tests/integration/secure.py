"""The secured broker of `socpipe stack up --secure` (which `make test` starts), for integration tests.

Tests using `secure_kafka` skip with a message when the stack runs without `--secure`. Clients of
the SOC log in as the stack's super user; agents get principals through the real enrolment path
(`KafkaAccess`, as `socpipe enrol serve` does).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import KafkaConfig


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str  # the SASL_SSL listener
    cafile: str
    soc_user: str
    soc_password: str

    def soc_config(self) -> KafkaConfig:
        return KafkaConfig(
            bootstrap=self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=self.soc_user,
            sasl_password=self.soc_password,
            ssl_cafile=self.cafile,
        )

    def soc_env(self) -> dict[str, str]:
        """SOCPIPE_KAFKA_* for a SOC service process (detector, coverage) on the SASL_SSL listener."""
        return {
            "SOCPIPE_KAFKA_BOOTSTRAP": self.bootstrap,
            "SOCPIPE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SOCPIPE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SOCPIPE_KAFKA_SASL_USERNAME": self.soc_user,
            "SOCPIPE_KAFKA_SASL_PASSWORD": self.soc_password,
            "SOCPIPE_KAFKA_SSL_CAFILE": self.cafile,
        }

    def client(self, username: str = "", password: str = "") -> dict[str, Any]:
        """kafka-python kwargs: the SOC super user, or the given (agent) user."""
        return {
            "bootstrap_servers": [self.bootstrap],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": username or self.soc_user,
            "sasl_plain_password": password if username else self.soc_password,
            "ssl_cafile": self.cafile,
        }


@pytest.fixture(scope="session")
def secure_kafka() -> SecureKafka:
    bootstrap = os.environ.get("SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP")
    if not bootstrap:
        pytest.skip("the stack runs without --secure (`socpipe stack up --secure`; `make test` does it)")
    creds = json.loads(Path(os.environ["SOCPIPE_STACK_KAFKA_SOC_CREDENTIALS"]).read_text())
    return SecureKafka(bootstrap, os.environ["SOCPIPE_STACK_KAFKA_CA"], creds["username"], creds["password"])
