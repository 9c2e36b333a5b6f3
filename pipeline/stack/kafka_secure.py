"""The secured Kafka of `socpipe stack up --secure`: SASL_SSL + SCRAM-SHA-512 + the ACL authorizer.

What the broker gets on top of the plain stack:

* a `SASL_SSL` listener on `Ports.kafka_secure` (certificate from the stack's CA, see `pki`), the
  only mechanism enabled being SCRAM-SHA-512. Agencies' agents reach this listener only;
* `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false`: a principal may do only what an
  ACL grants it. Agents get their principals and ACLs at enrolment (`pipeline.enrolment.kafka_access`);
* a super user for the SOC services, `socpipe-soc` (password generated once, kept 0600 in
  `<state>/kafka/soc-credentials.json`), created through the admin API after the broker starts, and
  set again whenever the file holds a password the broker was not given (a deleted file gets a new
  password; `<state>/kafka/soc-credentials.set` records a digest of the one applied, not the password);
* `connections.max.reauth.ms`: a connection must re-authenticate within this time, so deleted SCRAM
  credentials end sessions opened before the deletion (ACL removals act on the next request).

The PLAINTEXT listener and the controller listener stay on 127.0.0.1 with the ANONYMOUS principal as
a super user: they are the SOC host's own loopback (tests, the demo, local tools). A production broker
exposes only SASL_SSL to agencies; see SECURITY.md.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

from pipeline.enrolment.kafka_access import MECHANISM, upsert_scram
from pipeline.stack import credfile
from pipeline.stack.pki import LocalCA, ServerCert
from pipeline.stack.plan import Ports, StackError

SOC_USER = "socpipe-soc"
REAUTH_MS = 60_000


def broker_cert(state: Path) -> ServerCert:
    return LocalCA(state / "pki").issue("kafka", pkcs12_password="")


def soc_credentials(state: Path) -> dict[str, str]:
    """The SOC super user's SCRAM credentials for this stack (created when missing, file mode 0600;
    `setup_and_probe` gives the broker a password it does not hold yet)."""
    path = state / "kafka" / "soc-credentials.json"
    held = credfile.load(path)
    found = credfile.entry(path, held, None, SOC_USER) if held is not None else None
    if found is not None:
        return found
    data = {"username": SOC_USER, "password": secrets.token_urlsafe(24)}
    credfile.save(path, data)
    return data


def applied_file(state: Path) -> Path:
    """Digest of the SOC credential the broker was last given (see `credfile.stale`)."""
    return state / "kafka" / "soc-credentials.set"


def listener_properties(state: Path, kafka_port: int, secure_port: int, controller_port: int) -> list[str]:
    """server.properties lines that replace the plain stack's listener settings."""
    cert = broker_cert(state)
    return [
        f"listeners=PLAINTEXT://127.0.0.1:{kafka_port},SASL_SSL://127.0.0.1:{secure_port},"
        f"CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{kafka_port},SASL_SSL://127.0.0.1:{secure_port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=PLAINTEXT",
        f"sasl.enabled.mechanisms={MECHANISM}",
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={cert.p12}",
        f"ssl.keystore.password={cert.p12_password}",
        f"ssl.key.password={cert.p12_password}",
        "ssl.client.auth=none",
        "ssl.enabled.protocols=TLSv1.3,TLSv1.2",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        f"super.users=User:ANONYMOUS;User:{SOC_USER}",
        "allow.everyone.if.no.acl.found=false",
        f"connections.max.reauth.ms={REAUTH_MS}",
    ]


def client_kwargs(state: Path, secure_port: int, username: str = "", password: str = "") -> dict[str, Any]:
    """kafka-python settings for the SASL_SSL listener (the SOC super user unless a user is given)."""
    if not username:
        creds = soc_credentials(state)
        username, password = creds["username"], creds["password"]
    return {
        "bootstrap_servers": [f"127.0.0.1:{secure_port}"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
        "ssl_cafile": str(state / "pki" / "ca.pem"),
    }


def setup_and_probe(state: Path, kafka_port: int, secure_port: int) -> str | None:
    """Make sure the SOC super user exists (over the loopback listener), then answer over SASL_SSL."""
    from kafka import KafkaAdminClient

    creds = soc_credentials(state)
    admin = KafkaAdminClient(
        bootstrap_servers=f"127.0.0.1:{kafka_port}", request_timeout_ms=5000, client_id="socpipe-stack-setup"
    )
    try:
        known = admin.describe_user_scram_credentials([SOC_USER]).get(SOC_USER, {})
        applied = credfile.load_applied(applied_file(state))
        wanted = {SOC_USER: creds["password"]}
        if known.get("error") or not known.get("credential_infos") or credfile.stale(applied, wanted):
            # a new password (the credential file was deleted or cut short) replaces the broker's
            upsert_scram(admin, SOC_USER, creds["password"])
            credfile.save_applied(applied_file(state), {SOC_USER: credfile.digest(SOC_USER, creds["password"])})
    finally:
        admin.close()
    secure = KafkaAdminClient(
        **client_kwargs(state, secure_port), request_timeout_ms=5000, client_id="socpipe-stack-probe"
    )
    try:
        cluster = secure.describe_cluster()
        return f"SASL_SSL {MECHANISM} + ACLs on 127.0.0.1:{secure_port} (cluster {cluster.get('cluster_id')})"
    finally:
        secure.close()


def mode_file(state: Path) -> Path:
    return state / "kafka" / "mode"


def check_mode(state: Path, secure: bool) -> None:
    """A running broker keeps the listeners it was started with: asking for --secure of a broker started
    without it is an error, not a silent downgrade."""
    try:
        running = mode_file(state).read_text().strip() == "secure"
    except OSError:
        running = False
    if secure and not running:
        raise StackError(
            "kafka: the running broker was started without --secure; stop the stack (`socpipe stack down`) "
            "and run `socpipe stack up --secure`"
        )


def ready(state: Path, ports: Ports, secure: bool, brokers: int = 1) -> str | None:
    from pipeline.stack.servers import kafka_ready

    plain = kafka_ready(ports, brokers)
    if not secure or plain is None:
        return plain
    # Only a broker with our SASL_SSL listener gets the SOC user (never another broker on the port).
    socket.create_connection(("127.0.0.1", ports.kafka_secure), timeout=1).close()
    return f"{plain}; {setup_and_probe(state, ports.kafka, ports.kafka_secure)}"


def env(state: Path, secure_port: int) -> dict[str, str]:
    """What the stack's env file adds in secure mode (no secret: the SOC password stays in its 0600 file)."""
    return {
        "SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP": f"127.0.0.1:{secure_port}",
        "SOCPIPE_STACK_KAFKA_CA": str(state / "pki" / "ca.pem"),
        "SOCPIPE_STACK_KAFKA_SOC_CREDENTIALS": str(state / "kafka" / "soc-credentials.json"),
    }
