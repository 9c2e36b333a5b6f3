"""One YAML file per role, every key with a default, overridable by environment variables.

Config classes are plain dataclasses; `load_config` walks them, so a key's name, type and default
live in one place. An environment variable overrides a key by its dotted path in upper case, with
the prefix SOCPIPE_: `kafka.bootstrap` -> SOCPIPE_KAFKA_BOOTSTRAP, `es.url` -> SOCPIPE_ES_URL.
Unknown keys and wrong types are errors that name the key, raised at start, never mid-stream.

It lives with the agent (whose distribution carries no SOC code); `pipeline.config` re-exports it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

ENV_PREFIX = "SOCPIPE_"
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


def is_loopback(host: str) -> bool:
    """'localhost' or a loopback address (127.0.0.0/8, ::1; IPv6 in brackets too): where plain text may go."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


def check_kafka_security(protocol: str, mechanism: str, prefix: str = "kafka.") -> None:
    """A security protocol kafka-python knows, and with SASL a mechanism it knows; the error names the key."""
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(f"{prefix}security_protocol: must be one of {', '.join(KAFKA_PROTOCOLS)}")
    if "SASL" in protocol and mechanism not in SASL_MECHANISMS:
        raise ConfigError(f"{prefix}sasl_mechanism: must be SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN")


@dataclasses.dataclass
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by kafka-python producers, consumers and admin clients."""
        kw: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap.split(","),
            "security_protocol": self.security_protocol,
        }
        if "SASL" in self.security_protocol:
            kw.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        if "SSL" in self.security_protocol:
            kw.update(
                ssl_cafile=self.ssl_cafile or None,
                ssl_certfile=self.ssl_certfile or None,
                ssl_keyfile=self.ssl_keyfile or None,
            )
        return kw


def load_config(cls: type[T], path: str | Path | None = None, env: dict[str, str] | None = None) -> T:
    """Build a `cls` from defaults, then the YAML file (if any), then environment variables."""
    environ: typing.Mapping[str, str] = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read config file: {exc.strerror}") from exc
        import yaml  # here, not at import: a start without a config file or override never needs it

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of keys")
    return _build(cls, data, "", environ)


def _build(cls: type[T], data: dict[str, Any], prefix: str, env: typing.Mapping[str, str]) -> T:
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # T is a dataclass: load_config's contract
    names = {f.name for f in fields}
    for key in data:
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key (known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for f in fields:
        dotted = f"{prefix}{f.name}"
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            sub = data.get(f.name) or {}
            if not isinstance(sub, dict):
                raise ConfigError(f"{dotted}: must be a mapping")
            kwargs[f.name] = _build(typing.cast(type[Any], typ), sub, dotted + ".", env)
            continue
        env_name = ENV_PREFIX + dotted.upper().replace(".", "_")
        if env_name in env:
            import yaml

            kwargs[f.name] = _coerce(
                yaml.safe_load(env[env_name]) if env[env_name] else "", typ, f"{dotted} (from {env_name})"
            )
        elif f.name in data:
            kwargs[f.name] = _coerce(data[f.name], typ, dotted)
    return cls(**kwargs)


def _coerce(value: Any, typ: Any, key: str) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if typ is Any:
        return value
    if typ is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__}")
        return "" if value is None else str(value)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if typ in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if typ is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
        return typ(value)
    if origin is list:
        (item,) = typing.get_args(typ) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(typing.cast(type[Any], typ), value, key + ".", {})
    return value
