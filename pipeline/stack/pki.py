"""A local certificate authority for the stack's TLS listeners (Kafka SASL_SSL, Elasticsearch HTTPS).

One CA per state directory (`<state>/pki/ca.pem`, key `ca.key` 0600) signs one certificate per server,
valid for the names and addresses clients use (127.0.0.1, localhost by default). Everything is
generated with `cryptography` (EC P-256 keys, SHA-256 signatures) and written in the forms the servers
read: PEM cert + PKCS#8 key (Python clients, Elasticsearch, Prometheus) and a password-protected
PKCS#12 keystore for Java (Kafka). Re-running reuses what is still valid for the requested names;
a certificate within `RENEW_BEFORE_DAYS` of expiry, or missing a name, is issued again.

Production brokers and clusters use the SOC's real PKI; this CA exists so that the local stack and
the tests exercise the same TLS paths (hostname checks included) without a network or Docker.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825
RENEW_BEFORE_DAYS = 30
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class ServerCert:
    """Files of one server's identity. `p12` is empty unless a PKCS#12 keystore was asked for."""

    name: str
    cert: Path  # PEM: leaf certificate followed by the CA certificate
    key: Path  # PEM, PKCS#8, unencrypted, mode 0600
    ca: Path  # PEM: the CA certificate clients trust
    p12: Path | None = None  # PKCS#12 keystore (key + chain), mode 0600
    p12_password: str = ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Create with 0600 from the first byte; replace atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _still_good(cert: x509.Certificate, hosts: tuple[str, ...] = ()) -> bool:
    if cert.not_valid_after_utc - _now() < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    if not hosts:
        return True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
    return set(hosts) <= have


def _names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


class LocalCA:
    """The stack's CA in `<directory>`: created on first use, reused afterwards."""

    def __init__(self, directory: str | Path, common_name: str = "socpipe local stack CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cert_path = self.dir / "ca.pem"
        self.key_path = self.dir / "ca.key"
        self._load_or_create(common_name)

    def _load_or_create(self, common_name: str) -> None:
        if self.cert_path.exists() and self.key_path.exists():
            cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            if _still_good(cert) and isinstance(key, ec.EllipticCurvePrivateKey):
                self.cert, self.key = cert, key
                return
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        _write_private(self.key_path, _key_pem(self.key))
        _write_public(self.cert_path, self.cert.public_bytes(serialization.Encoding.PEM))
        # Leaves signed by an older CA no longer verify: drop them so they are issued again.
        for stale in self.dir.glob("*.pem"):
            if stale != self.cert_path:
                stale.unlink()

    def issue(
        self,
        name: str,
        hosts: tuple[str, ...] = DEFAULT_HOSTS,
        pkcs12_password: str | None = None,
        client_auth: bool = False,
    ) -> ServerCert:
        """A server certificate `<name>.pem`/`<name>.key` for `hosts` (IPs and DNS names), reused if valid.

        With `pkcs12_password`, also `<name>.p12` (Java keystore; empty string = generate a password,
        kept in `<name>.p12.password`, mode 0600). `client_auth` adds the clientAuth usage (mTLS)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"certificate name {name!r}: must be a plain file name")
        cert_path, key_path = self.dir / f"{name}.pem", self.dir / f"{name}.key"
        leaf = None
        if cert_path.exists() and key_path.exists():
            chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
            if chain and _still_good(chain[0], tuple(hosts)) and chain[0].issuer == self.cert.subject:
                leaf = chain[0]
                key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if leaf is None:
            key = ec.generate_private_key(ec.SECP256R1())
            now = _now()
            usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
            leaf = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(_names(tuple(hosts))), critical=False)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
                )
                .sign(self.key, hashes.SHA256())
            )
            _write_private(key_path, _key_pem(key))
            pem = leaf.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(serialization.Encoding.PEM)
            _write_public(cert_path, pem)
            (self.dir / f"{name}.p12").unlink(missing_ok=True)
        if pkcs12_password is None:
            return ServerCert(name, cert_path, key_path, self.cert_path)
        p12_path, pw_path = self.dir / f"{name}.p12", self.dir / f"{name}.p12.password"
        if pkcs12_password == "":
            pkcs12_password = pw_path.read_text().strip() if pw_path.exists() else secrets.token_hex(16)
        if not p12_path.exists() or not pw_path.exists() or pw_path.read_text().strip() != pkcs12_password:
            data = pkcs12.serialize_key_and_certificates(
                name.encode(),
                key,  # type: ignore[arg-type]
                leaf,
                [self.cert],
                serialization.BestAvailableEncryption(pkcs12_password.encode()),
            )
            _write_private(p12_path, data)
            _write_private(pw_path, pkcs12_password.encode())
        return ServerCert(name, cert_path, key_path, self.cert_path, p12_path, pkcs12_password)
