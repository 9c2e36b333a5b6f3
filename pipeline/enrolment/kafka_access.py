"""Each enrolled agent's own Kafka principal: SCRAM-SHA-512 credentials and ACLs, made and removed by the SOC.

At enrolment the SOC creates a SCRAM credential whose user name is the agent id (so the broker's
authenticated principal `User:<agent_id>` is the registry's agent) and grants that principal exactly:

* WRITE on the raw topic and on the heartbeat topic (LITERAL patterns; WRITE implies DESCRIBE, and
  since Kafka 3.0 it also covers InitProducerId for the idempotent producer, so no cluster-level
  IDEMPOTENT_WRITE is needed);
* nothing else: no READ on any topic (an agent cannot see another agency's logs), no group, no topic
  creation, no write to the detector's internal topics (correlation, state, dead letters).

Revoking deletes the ACLs (the broker refuses the principal's next request, also on connections that
are already open) and the credential (no new login; open sessions end at the broker's
`connections.max.reauth.ms`).

Kafka does not tell consumers which principal wrote a record, so which agency a record belongs to is
proven by the per-batch MAC checked against the enrolment registry (see `collectors.wire.batch_mac`),
not by the topic: the ACLs bound what a leaked credential can reach, the MAC binds a record to an agent.

The plan of ACLs is pure (`agent_acls`); `KafkaAccess` applies it through kafka-python's admin client
(AlterUserScramCredentials, CreateAcls, DeleteAcls).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.config import KafkaConfig

if TYPE_CHECKING:  # for annotations only: kafka-python is imported inside the functions that use it
    from kafka import KafkaAdminClient
    from kafka.admin import ACL

log = logging.getLogger("socpipe.enrolment.kafka")

MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192


class KafkaAccessError(RuntimeError):
    """The broker refused or could not be reached while creating or removing an agent's access."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One ACL entry: ALLOW `operation` on topic `topic` (LITERAL) for `User:<principal>` from any host."""

    principal: str
    topic: str
    operation: str  # "WRITE"


def principal_of(agent_id: str) -> str:
    return f"User:{agent_id}"


def agent_acls(agent_id: str, topics: list[str]) -> list[Grant]:
    """What an agent may do: write its records and heartbeats, nothing else."""
    if not agent_id or any(c in agent_id for c in ",;=*: "):
        raise ValueError(f"agent id {agent_id!r} cannot be a Kafka principal")
    return [Grant(principal_of(agent_id), t, "WRITE") for t in dict.fromkeys(topics) if t]


def new_password() -> str:
    return secrets.token_urlsafe(32)


def upsert_scram(admin: KafkaAdminClient, username: str, password: str) -> None:
    """Create or replace `username`'s SCRAM-SHA-512 credential through the admin API."""
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

    result = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(username, ScramMechanism.SCRAM_SHA_512, password, iterations=SCRAM_ITERATIONS)]
    )
    if result.get(username):
        raise KafkaAccessError(f"creating the SCRAM credential of {username} failed: {result[username]}")


class KafkaAccess:
    """Creates and removes agents' principals on the broker, with the SOC's own (super user) credentials."""

    def __init__(self, admin_cfg: KafkaConfig, topics: list[str], topic_partitions: int = 4):
        self.cfg = admin_cfg
        self.topics = [t for t in topics if t]
        self.topic_partitions = topic_partitions

    def _admin(self) -> KafkaAdminClient:
        from kafka import KafkaAdminClient

        try:
            return KafkaAdminClient(**self.cfg.client_kwargs(), client_id="socpipe-enrolment", request_timeout_ms=10000)
        except Exception as exc:  # unreachable broker, refused login
            raise KafkaAccessError(f"cannot reach Kafka at {self.cfg.bootstrap} as the SOC: {exc}") from exc

    def grant(self, agent_id: str) -> str:
        """Create `agent_id`'s credential and ACLs; returns its password (shown to the agent once)."""
        from pipeline import kafka_io

        plan = agent_acls(agent_id, self.topics)
        password = new_password()
        # Agents cannot create topics: make sure theirs exist before they write.
        kafka_io.ensure_topics(self.cfg, {t: {"partitions": self.topic_partitions} for t in self.topics})
        admin = self._admin()
        try:
            upsert_scram(admin, agent_id, password)
            created = admin.create_acls([_to_acl(g) for g in plan])
            if created.get("failed"):
                raise KafkaAccessError(f"creating the ACLs of {agent_id} failed: {created['failed']}")
        except KafkaAccessError:
            self._remove(admin, agent_id)
            raise
        except Exception as exc:
            self._remove(admin, agent_id)
            raise KafkaAccessError(f"granting Kafka access to {agent_id} failed: {exc}") from exc
        finally:
            admin.close()
        log.info("enrolment.kafka_granted agent=%s topics=%s", agent_id, ",".join(g.topic for g in plan))
        return password

    def revoke(self, agent_id: str) -> dict[str, Any]:
        """Remove every ACL of the agent's principal and its credential -> what was removed."""
        admin = self._admin()
        try:
            removed = self._remove(admin, agent_id)
        finally:
            admin.close()
        log.info(
            "enrolment.kafka_revoked agent=%s acls=%d credential=%s", agent_id, removed["acls"], removed["credential"]
        )
        return removed

    @staticmethod
    def _remove(admin: KafkaAdminClient, agent_id: str) -> dict[str, Any]:
        from kafka.admin import (
            ACLFilter,
            ACLOperation,
            ACLPermissionType,
            ACLResourcePatternType,
            ResourcePatternFilter,
            ResourceType,
            ScramMechanism,
            UserScramCredentialDeletion,
        )

        deleted = admin.delete_acls(
            [
                ACLFilter(
                    principal=principal_of(agent_id),
                    host="*",
                    operation=ACLOperation.ANY,
                    permission_type=ACLPermissionType.ANY,
                    resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
                )
            ]
        )
        n_acls = 0
        for _filter, matching, error in deleted:
            code: int = getattr(error, "errno", 0) or 0
            if code:
                raise KafkaAccessError(f"deleting the ACLs of {agent_id} failed: {error}")
            n_acls += len(matching)
        result = admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion(agent_id, ScramMechanism.SCRAM_SHA_512)]
        )
        err = result.get(agent_id)
        # "no credential" is what we want: deleting twice is not an error.
        if err and "not found" not in err.lower() and "does not exist" not in err.lower():
            raise KafkaAccessError(f"deleting the SCRAM credential of {agent_id} failed: {err}")
        return {"acls": n_acls, "credential": not err}


def _to_acl(g: Grant) -> ACL:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType

    return ACL(
        principal=g.principal,
        host="*",
        operation=ACLOperation[g.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(ResourceType.TOPIC, g.topic),
    )
