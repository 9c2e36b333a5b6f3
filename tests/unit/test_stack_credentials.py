"""`stack up --secure`: the servers end up holding the passwords of the credential files.

A deleted or cut-short credential file gets new passwords; the broker's SOC user and the Elasticsearch
file realm's users are given them again (a digest of what was applied, never the password, says which).
An entry of the wrong shape is an error naming the file and the entry. Over real servers:
tests/integration/test_stack_credentials.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.stack import credfile, elasticsearch_secure, kafka_secure
from pipeline.stack.plan import StackError

# --- the decision: which users need their password applied again ---


def test_a_digest_names_the_credential_without_holding_the_password():
    d = credfile.digest("socpipe-soc", "s3cret-password")
    assert "s3cret" not in d
    assert credfile.matches(d, "socpipe-soc", "s3cret-password")
    assert not credfile.matches(d, "socpipe-soc", "other") and not credfile.matches(
        d, "socpipe-admin", "s3cret-password"
    )


def _old_sha256_record(username: str, password: str) -> str:
    """What versions before the scrypt records kept (a plain SHA-256, cheap to guess from)."""
    return hashlib.sha256(f"socpipe-stack-credential\0{username}\0{password}".encode()).hexdigest()


def test_a_digest_is_a_salted_scrypt_with_its_parameters_beside_it():
    """A password an operator typed in ("Summer2026!") is not one SHA-256 away from the record: scrypt
    N=2**14, r=8, p=1, a random salt per record, all in the record (checked here by hashlib itself)."""
    record = credfile.digest("socpipe-admin", "Summer2026!")
    _, scheme, params, salt, key = record.split("$")
    assert scheme == "scrypt" and params == "ln=14,r=8,p=1"
    raw_salt = base64.b64decode(salt + "=" * (-len(salt) % 4))
    raw_key = base64.b64decode(key + "=" * (-len(key) % 4))
    assert len(raw_salt) == 16 and len(raw_key) == 32
    expected = hashlib.scrypt(
        b"socpipe-stack-credential\0socpipe-admin\0Summer2026!", salt=raw_salt, n=2**14, r=8, p=1, dklen=32
    )
    assert raw_key == expected
    again = credfile.digest("socpipe-admin", "Summer2026!")
    assert again != record and credfile.matches(again, "socpipe-admin", "Summer2026!")  # salted: no two alike
    assert _old_sha256_record("socpipe-admin", "Summer2026!") not in record


def test_a_record_is_checked_with_the_parameters_it_carries():
    """Records made with other parameters (a later version's, say) still verify; a damaged record or one
    asking for more than 256 MiB of memory matches nothing (the password is applied again), never raises."""
    salt = b"0123456789abcdef"
    secret = b"socpipe-stack-credential\0u\0pw"
    key = hashlib.scrypt(secret, salt=salt, n=2**10, r=4, p=2, dklen=32)
    b64 = lambda raw: base64.b64encode(raw).decode().rstrip("=")  # noqa: E731
    record = f"$scrypt$ln=10,r=4,p=2${b64(salt)}${b64(key)}"
    assert credfile.matches(record, "u", "pw") and not credfile.matches(record, "u", "pW")
    for bad in [
        record.replace("ln=10", "ln=22"),  # 4 GiB: refused before hashing
        record.replace("r=4", "r=0"),
        record.replace("ln=10,", ""),
        record.replace("p=2", "p=2,x=1"),
        record[:-4],
        record.replace("$scrypt$", "$argon2id$"),
        record + "$",
        "$scrypt$ln=10,r=4,p=2$!!$" + b64(key),
        _old_sha256_record("u", "pw"),
        "",
    ]:
        assert not credfile.matches(bad, "u", "pw"), bad


def test_a_sha256_record_of_an_earlier_version_is_applied_again_then_recorded_as_scrypt(tmp_path, users_tool, broker):
    """Chosen over verifying the old digest and upgrading it: no SHA-256 check stays in the code, and the
    cost is applying the same passwords once more (the servers keep working with them throughout)."""
    _apply(tmp_path)
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    creds = {c["username"]: c["password"] for c in elasticsearch_secure.credentials(tmp_path).values()}
    es_record = tmp_path / "conf" / "users.socpipe-applied"
    es_record.write_text(json.dumps({u: _old_sha256_record(u, p) for u, p in creds.items()}))
    soc = kafka_secure.soc_credentials(tmp_path)
    kafka_record = kafka_secure.applied_file(tmp_path)
    kafka_record.write_text(json.dumps({soc["username"]: _old_sha256_record(soc["username"], soc["password"])}))
    users_tool.clear()
    assert len(_apply(tmp_path)) == 4 and [c[0] for c in users_tool] == ["passwd"] * 4
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    assert broker.upserts == [kafka_secure.SOC_USER] * 2
    assert holds(broker.scram[kafka_secure.SOC_USER], soc["password"])
    for path in (es_record, kafka_record):
        assert all(r.startswith("$scrypt$ln=14,r=8,p=1$") for r in json.loads(path.read_text()).values())
    users_tool.clear()
    assert _apply(tmp_path) == [] and users_tool == []  # upgraded: left alone from now on
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    assert broker.upserts == [kafka_secure.SOC_USER] * 2


def test_stale_is_every_user_whose_applied_digest_differs_or_is_missing():
    wanted = {"a": "pa", "b": "pb", "c": "pc"}
    applied = {"a": credfile.digest("a", "pa"), "b": credfile.digest("b", "old"), "gone": "x"}
    assert credfile.stale(applied, wanted) == ["b", "c"]
    assert credfile.stale({u: credfile.digest(u, p) for u, p in wanted.items()}, wanted) == []
    assert credfile.stale({}, wanted) == ["a", "b", "c"]


@pytest.mark.parametrize("text", ["socpipe-soc", "", "[1]", '{"socpipe-soc": 5}'])
def test_an_unreadable_or_old_record_means_apply_again(tmp_path, text):
    """The marker of earlier versions held the username only: the password is set once more."""
    path = tmp_path / "applied"
    path.write_text(text)
    assert credfile.stale(credfile.load_applied(path), {"socpipe-soc": "p"}) == ["socpipe-soc"]
    assert credfile.load_applied(tmp_path / "missing") == {}


# --- entries of the wrong shape: a clear error naming the file and the entry, the file left as it is ---

ES_BAD: dict[str, dict[str, object]] = {
    "password a number": {"admin": {"password": 5}},
    "password missing": {"triage": {"username": "socpipe-triage"}},
    "password empty": {"setup": {"username": "socpipe-setup", "password": ""}},
    "entry a string": {"detector": "hunter2"},
    "entry a list": {"admin": ["socpipe-admin", "x"]},
    "another username": {"admin": {"username": "root", "password": "x"}},
    # JSON escapes make strings a password cannot be: the users tool's prompt ends at a newline, and a
    # lone surrogate cannot be encoded (digest() raised UnicodeEncodeError, a traceback, not this error)
    "password with a newline": {"admin": {"username": "socpipe-admin", "password": "abc\ndef"}},
    "password a lone surrogate": {"admin": {"username": "socpipe-admin", "password": "\ud800pw"}},
}


@pytest.mark.parametrize("case", sorted(ES_BAD))
def test_an_elasticsearch_entry_of_the_wrong_shape_is_an_error_naming_file_and_entry(tmp_path, case):
    path = elasticsearch_secure.credentials_file(tmp_path)
    text = json.dumps(ES_BAD[case])
    path.write_text(text)
    [name] = ES_BAD[case]
    with pytest.raises(StackError, match=re.escape(f"{path}: entry {name!r}") + ".*delete it"):
        elasticsearch_secure.credentials(tmp_path)
    assert path.read_text() == text


def test_the_error_says_what_is_wrong_with_the_entry_without_the_password(tmp_path):
    path = elasticsearch_secure.credentials_file(tmp_path)
    path.write_text(json.dumps({"admin": {"password": 5}, "setup": {"username": "x", "password": "hunter2"}}))
    with pytest.raises(StackError) as err:
        elasticsearch_secure.credentials(tmp_path)
    assert "entry 'admin': password must be a non-empty string, not a number, username must be " in str(err.value)
    assert "'socpipe-admin', not missing" in str(err.value)
    path.write_text(json.dumps({"setup": {"username": "x", "password": "hunter2"}}))
    with pytest.raises(StackError, match="entry 'setup': username must be 'socpipe-setup', not 'x'") as err:
        elasticsearch_secure.credentials(tmp_path)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    "held", [{"username": "socpipe-soc", "password": 5}, {"username": "admin", "password": "x"}, {"password": "x"}]
)
def test_a_kafka_credential_of_the_wrong_shape_is_an_error_naming_the_file(tmp_path, held):
    path = tmp_path / "kafka" / "soc-credentials.json"
    path.parent.mkdir()
    path.write_text(json.dumps(held))
    with pytest.raises(StackError, match=re.escape(f"{path}: the credential")):
        kafka_secure.soc_credentials(tmp_path)


def test_a_file_of_bytes_that_are_not_text_is_one_that_does_not_parse(tmp_path):
    """Not UTF-8 (read_text raised UnicodeDecodeError, a traceback from `stack up`): like a cut-short
    file, new credentials are made, kept 0600."""
    path = tmp_path / "kafka" / "soc-credentials.json"
    path.parent.mkdir()
    path.write_bytes(b"\xff\xfe{garbage")
    assert credfile.load(path) is None
    made = kafka_secure.soc_credentials(tmp_path)
    assert json.loads(path.read_text()) == made and path.stat().st_mode & 0o777 == 0o600


def test_a_credential_file_is_0600_even_when_a_stale_temporary_file_was_not(tmp_path):
    """save() wrote through an existing `<name>.tmp` (O_CREAT keeps an existing file's mode) and renamed
    it over the credential file: passwords world-readable."""
    path = elasticsearch_secure.credentials_file(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("")
    tmp.chmod(0o644)
    elasticsearch_secure.credentials(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    victim = tmp_path / "elsewhere"
    victim.write_text("kept")
    tmp.symlink_to(victim)  # nor is a symlink there followed: the passwords are not written through it
    path.unlink()
    elasticsearch_secure.credentials(tmp_path)
    assert victim.read_text() == "kept" and path.stat().st_mode & 0o777 == 0o600 and not path.is_symlink()


def test_a_missing_elasticsearch_entry_is_made_and_the_others_kept(tmp_path):
    first = elasticsearch_secure.credentials(tmp_path)
    path = elasticsearch_secure.credentials_file(tmp_path)
    data = json.loads(path.read_text())
    del data["triage"]
    path.write_text(json.dumps(data))
    second = elasticsearch_secure.credentials(tmp_path)
    assert second["admin"] == first["admin"] and second["triage"]["password"] != first["triage"]["password"]
    assert json.loads(path.read_text())["triage"] == second["triage"] and path.stat().st_mode & 0o777 == 0o600


# --- Elasticsearch: the file realm gets new passwords (the distribution's tool, faked here) ---


@pytest.fixture
def users_tool(tmp_path, monkeypatch) -> list[list[str]]:
    """Records `elasticsearch-users` calls (the arguments, then what its prompt is fed) and keeps `users`
    as the tool would (name:hash lines). A password never appears among the arguments (`ps` shows them)."""
    calls: list[list[str]] = []

    def fake(home: Path, env: dict[str, str], user: str | None, conf: Path, args: list[str], password: str) -> None:
        assert password and not any(password in a for a in args)
        calls.append([*args, f"stdin={password}"])
        users = conf / "users"
        lines = users.read_text().splitlines() if users.exists() else []
        if args[0] == "useradd":
            lines.append(f"{args[1]}:$2a$10$hash")
        users.write_text("".join(line + "\n" for line in lines))

    monkeypatch.setattr(elasticsearch_secure, "_users_tool", fake)
    (tmp_path / "conf").mkdir()
    return calls


def _apply(state: Path) -> list[str]:
    return elasticsearch_secure.apply_users(state, state / "home", state / "conf", {}, None)


def test_elasticsearch_users_are_added_once_then_left_alone(tmp_path, users_tool):
    # admin last: the stack's readiness probe logs in as admin, so it passes once the node read the rest too
    assert _apply(tmp_path) == [f"socpipe-{n}" for n in ("detector", "triage", "setup", "admin")]
    assert [c[0] for c in users_tool] == ["useradd"] * 4 and users_tool[-1][-3:-1] == ["-r", "superuser"]
    users_tool.clear()
    assert _apply(tmp_path) == [] and users_tool == []
    applied = (tmp_path / "conf" / "users.socpipe-applied").read_text()
    for c in elasticsearch_secure.credentials(tmp_path).values():
        assert c["password"] not in applied


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_deleted_or_cut_short_credential_file_gets_its_new_passwords_applied(tmp_path, users_tool, damage):
    _apply(tmp_path)
    path = elasticsearch_secure.credentials_file(tmp_path)
    if damage == "delete":
        path.unlink()
    else:
        path.write_text(path.read_text()[:20])
    users_tool.clear()
    assert len(_apply(tmp_path)) == 4
    new = elasticsearch_secure.credentials(tmp_path)
    assert users_tool == [
        ["passwd", new[n]["username"], f"stdin={new[n]['password']}"] for n in ("detector", "triage", "setup", "admin")
    ]
    users_tool.clear()
    assert _apply(tmp_path) == [] and users_tool == []


def test_a_node_from_before_the_record_gets_the_files_passwords_once(tmp_path, users_tool):
    _apply(tmp_path)
    (tmp_path / "conf" / "users.socpipe-applied").unlink()
    users_tool.clear()
    _apply(tmp_path)
    assert [c[0] for c in users_tool] == ["passwd"] * 4
    users_tool.clear()
    assert _apply(tmp_path) == []


# --- Kafka: the SOC user's SCRAM credential is set again when the file's password is not the applied one ---


class FakeAdmin:
    """KafkaAdminClient as setup_and_probe uses it; the broker's SCRAM credential per user."""

    scram: dict[str, Any] = {}  # user -> the upsertion (salt, iterations, salted password), as a broker keeps
    upserts: list[str] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def describe_user_scram_credentials(self, users: list[str]) -> dict[str, Any]:
        return {u: {"credential_infos": [{"mechanism": 2}]} if u in self.scram else {"error": "none"} for u in users}

    def alter_user_scram_credentials(self, changes: list[Any]) -> dict[str, Any]:
        for change in changes:
            self.scram[change.user] = change
            self.upserts.append(change.user)
        return {}

    def describe_cluster(self) -> dict[str, Any]:
        password = self.kwargs.get("sasl_plain_password")
        if password is not None and not holds(self.scram.get(self.kwargs["sasl_plain_username"]), password):
            raise RuntimeError("SASL authentication failed")
        return {"cluster_id": "c"}

    def close(self) -> None:
        pass


def holds(cred: Any, password: str) -> bool:
    """SCRAM's check: the salted password derived from `password` equals the one kept."""
    if cred is None:
        return False
    derived = hashlib.pbkdf2_hmac(cred.mechanism.hash_name, password.encode(), cred.salt, cred.iterations)
    return bool(derived == cred.salted_password)


@pytest.fixture
def broker(monkeypatch) -> type[FakeAdmin]:
    import kafka

    monkeypatch.setattr(kafka, "KafkaAdminClient", FakeAdmin)
    FakeAdmin.scram, FakeAdmin.upserts = {}, []
    return FakeAdmin


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_kafka_soc_password_made_anew_is_set_on_the_broker(tmp_path, broker, damage):
    (tmp_path / "pki").mkdir()
    assert kafka_secure.setup_and_probe(tmp_path, 1, 2) and broker.upserts == [kafka_secure.SOC_USER]
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    assert broker.upserts == [kafka_secure.SOC_USER]  # held already: not set again
    path = tmp_path / "kafka" / "soc-credentials.json"
    if damage == "delete":
        path.unlink()
    else:
        path.write_text('{"username": "socpipe-')
    kafka_secure.setup_and_probe(tmp_path, 1, 2)  # SASL with the new password succeeds
    assert broker.upserts == [kafka_secure.SOC_USER] * 2
    password = kafka_secure.soc_credentials(tmp_path)["password"]
    assert holds(broker.scram[kafka_secure.SOC_USER], password)
    assert password not in kafka_secure.applied_file(tmp_path).read_text()


def test_kafka_marker_of_an_earlier_version_sets_the_password_once(tmp_path, broker):
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    kafka_secure.applied_file(tmp_path).write_text(kafka_secure.SOC_USER)  # what it used to hold
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    kafka_secure.setup_and_probe(tmp_path, 1, 2)
    assert broker.upserts == [kafka_secure.SOC_USER] * 2
