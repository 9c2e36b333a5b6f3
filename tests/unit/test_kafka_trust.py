"""Per-agent Kafka access (the pure plan), the local CA, and the CA the agent receives at enrolment."""

import json
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from collectors.configfile import ConfigError
from collectors.identity import Identity, KafkaCredentials, load_identity, save_identity
from pipeline.enrolment.kafka_access import Grant, agent_acls
from pipeline.stack import kafka_secure
from pipeline.stack.pki import LocalCA


def test_an_agent_may_write_its_two_topics_and_nothing_else():
    plan = agent_acls("agt-0a1b2c", ["socpipe.raw", "socpipe.heartbeats", "socpipe.raw", ""])
    assert plan == [
        Grant("User:agt-0a1b2c", "socpipe.raw", "WRITE"),
        Grant("User:agt-0a1b2c", "socpipe.heartbeats", "WRITE"),
    ]
    for bad in ("", "agt,1", "agt;x", "*", "User:x", "a b"):
        with pytest.raises(ValueError):
            agent_acls(bad, ["socpipe.raw"])


def test_local_ca_issues_a_server_certificate_clients_verify(tmp_path):
    ca = LocalCA(tmp_path / "pki")
    cert = ca.issue("kafka", pkcs12_password="")
    assert cert.p12 is not None  # a keystore was asked for
    assert stat.S_IMODE(cert.key.stat().st_mode) == 0o600 and stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    leaf = x509.load_pem_x509_certificates(cert.cert.read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # Python's TLS client accepts the chain for 127.0.0.1 with the CA (what kafka-python does)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert.cert, cert.key)
    client_ctx = ssl.create_default_context(cafile=str(cert.ca))
    assert client_ctx.check_hostname
    # the Java keystore opens with its password and holds the key and the chain
    key, p12_leaf, chain = pkcs12.load_key_and_certificates(cert.p12.read_bytes(), cert.p12_password.encode())
    assert key is not None and p12_leaf == leaf and chain == [ca.cert]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(cert.p12.read_bytes(), b"wrong")
    # re-running reuses CA, leaf and keystore password; a new host name issues a new leaf
    first = cert.cert.read_bytes()
    again = LocalCA(tmp_path / "pki").issue("kafka", pkcs12_password="")
    assert again.cert.read_bytes() == first and again.p12_password == cert.p12_password
    wider = LocalCA(tmp_path / "pki").issue("kafka", hosts=("127.0.0.1", "localhost", "kafka.soc"))
    assert wider.cert.read_bytes() != first
    with pytest.raises(ValueError):
        ca.issue("../evil")


def test_secure_broker_properties(tmp_path):
    props = kafka_secure.listener_properties(tmp_path, 29092, 29094, 29093)
    text = "\n".join(props)
    assert "SASL_SSL://127.0.0.1:29094" in text and "sasl.enabled.mechanisms=SCRAM-SHA-512" in text
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in text
    assert "allow.everyone.if.no.acl.found=false" in text
    assert "connections.max.reauth.ms=" in text
    # the SOC password is generated once, kept 0600, and never written to the env file
    creds = kafka_secure.soc_credentials(tmp_path)
    assert kafka_secure.soc_credentials(tmp_path) == creds
    path = tmp_path / "kafka" / "soc-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert creds["password"] not in json.dumps(kafka_secure.env(tmp_path, 29094))


def test_issued_ca_becomes_a_file_for_the_kafka_client(tmp_path):
    pem = LocalCA(tmp_path / "pki").cert_path.read_text()
    ident = Identity(
        "xa-a",
        "agt-1",
        "s",
        KafkaCredentials("kafka.soc:9094", "SASL_SSL", "SCRAM-SHA-512", "agt-1", "pw", ssl_ca_pem=pem),
    )
    path = save_identity(tmp_path / "state" / "identity.json", ident)
    assert "ssl_cafile" not in json.loads(path.read_text())["kafka"]
    loaded = load_identity(path)
    assert loaded.kafka.ssl_cafile == str(tmp_path / "state" / "kafka-ca.pem")
    assert (tmp_path / "state" / "kafka-ca.pem").read_text() == pem
    assert loaded.kafka.sasl_mechanism == "SCRAM-SHA-512" and loaded.kafka.sasl_username == "agt-1"
    bad = Identity("xa-a", "agt-1", "s", KafkaCredentials(ssl_ca_pem="not a certificate"))
    save_identity(path, bad)
    with pytest.raises(ConfigError, match="ssl_ca_pem"):
        load_identity(path)


def test_secure_stack_env_and_mode(tmp_path):
    from pipeline.stack import Stack, StackError
    from pipeline.stack.plan import Ports

    ports = Ports(kafka=39092, kafka_controller=39093, kafka_secure=39094)
    env = Stack(tmp_path, ports, secure=True).env()
    assert env["SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP"] == "127.0.0.1:39094"
    assert env["SOCPIPE_STACK_KAFKA_CA"] == str(tmp_path.resolve() / "pki" / "ca.pem")
    assert "SOCPIPE_STACK_KAFKA_SECURE_BOOTSTRAP" not in Stack(tmp_path, ports, secure=False).env()
    # a broker started without --secure cannot be "upgraded" while it runs: a clear error, not a probe timeout
    (tmp_path / "kafka").mkdir()
    kafka_secure.mode_file(tmp_path).write_text("plain")
    with pytest.raises(StackError, match="without --secure"):
        kafka_secure.check_mode(tmp_path, secure=True)
    kafka_secure.check_mode(tmp_path, secure=False)
    kafka_secure.mode_file(tmp_path).write_text("secure")
    kafka_secure.check_mode(tmp_path, secure=True)
