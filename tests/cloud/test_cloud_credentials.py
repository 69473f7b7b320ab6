"""Credential providers: token file parsing and refresh, RAM role, and no secret ever shown."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest

from terway.cloud.credentials import (
    Credential,
    CredentialError,
    RamRoleProvider,
    Secret,
    StaticProvider,
    TokenFileProvider,
    encrypt_token_value,
    parse_token_file,
    provider_from_config,
)
from terway.cloud.metadata import MetadataClient
from tests.cloud.conftest import MetaServer

SK = "SuperSecretSK-0123456789"
TOKEN = "SecurityTokenValue-abcdef"
KEYRING = b"0123456789abcdef"


def encrypted_doc(ak: str = "LTAIak", sk: str = SK, token: str = TOKEN,
                  exp: str = "2030-01-01T00:00:00Z") -> dict[str, str]:
    iv = b"\x01" * 16
    return {
        "access.key.id": encrypt_token_value(ak, KEYRING, iv),
        "access.key.secret": encrypt_token_value(sk, KEYRING, iv),
        "security.token": encrypt_token_value(token, KEYRING, iv),
        "expiration": exp,
        "keyring": KEYRING.decode(),
    }


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- Secret --------------------------------------------------------------------------------------

def test_secret_never_shows_itself() -> None:
    s = Secret(SK)
    for shown in (str(s), repr(s), f"{s}", f"{s!r}", "%s" % (s,), "{}".format(s)):  # noqa: UP031,UP032
        assert SK not in shown
        assert "***" in shown
    assert s.reveal() == SK
    assert s == Secret(SK) and s != Secret("other")


def test_secret_refuses_pickle() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(SK))


def test_credential_repr_hides_secrets() -> None:
    c = Credential("LTAIak", Secret(SK), Secret(TOKEN), 1.0, "static")
    assert SK not in repr(c) and TOKEN not in repr(c)
    assert c.kind == "sts"
    assert Credential("a", Secret("b")).kind == "access_key"


# -- token file ----------------------------------------------------------------------------------

def test_parse_upstream_encrypted_token_file() -> None:
    cred = parse_token_file(json.dumps(encrypted_doc()).encode())
    assert cred.access_key_id == "LTAIak"
    assert cred.access_key_secret.reveal() == SK
    assert cred.security_token is not None and cred.security_token.reveal() == TOKEN
    assert cred.expiration == 1893456000.0


def test_parse_plain_token_file() -> None:
    doc = {"AccessKeyId": "STS.x", "AccessKeySecret": SK, "SecurityToken": TOKEN,
           "Expiration": "2030-01-01T00:00:00Z"}
    cred = parse_token_file(json.dumps(doc).encode())
    assert (cred.access_key_id, cred.access_key_secret.reveal()) == ("STS.x", SK)
    assert cred.expiration == 1893456000.0


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.pop("keyring"), "keyring"),
    (lambda d: d.update({"access.key.secret": "%%%notbase64"}), "access.key.secret"),
    (lambda d: d.update({"expiration": "tomorrow"}), "expiration"),
    (lambda d: d.update({"keyring": "short"}), "keyring"),
    (lambda d: d.update({"access.key.id": ""}), "access.key.id"),
])
def test_bad_token_file_names_field_and_hides_values(mutate, field: str) -> None:  # type: ignore[no-untyped-def]
    doc = encrypted_doc()
    mutate(doc)
    with pytest.raises(CredentialError) as info:
        parse_token_file(json.dumps(doc).encode(), source="token_file:/x")
    msg = str(info.value)
    assert field in msg
    assert SK not in msg and TOKEN not in msg
    assert info.value.__cause__ is None


def test_wrong_keyring_does_not_decrypt() -> None:
    doc = encrypted_doc()
    doc["keyring"] = "fedcba9876543210"
    with pytest.raises(CredentialError, match="does not decrypt"):
        parse_token_file(json.dumps(doc).encode())


def test_not_json_hides_content() -> None:
    with pytest.raises(CredentialError, match="not valid JSON") as info:
        parse_token_file(b'{"AccessKeySecret": "' + SK.encode() + b'"')
    assert SK not in str(info.value)
    assert info.value.__suppress_context__


def test_token_file_reread_every_30_minutes(tmp_path: Path) -> None:
    path = tmp_path / "token-config"
    path.write_text(json.dumps(encrypted_doc(ak="first")))
    clock = Clock(1_000_000.0)
    prov = TokenFileProvider(path, clock=clock)
    assert prov.get().access_key_id == "first"
    path.write_text(json.dumps(encrypted_doc(ak="second")))
    clock.t += 29 * 60
    assert prov.get().access_key_id == "first"
    clock.t += 60
    assert prov.get().access_key_id == "second"


def test_token_file_reread_when_about_to_expire(tmp_path: Path) -> None:
    path = tmp_path / "token-config"
    path.write_text(json.dumps(encrypted_doc(ak="first", exp="2030-01-01T00:00:00Z")))
    exp = 1893456000.0
    clock = Clock(exp - 3600)
    prov = TokenFileProvider(path, clock=clock)
    assert prov.get().access_key_id == "first"
    path.write_text(json.dumps(encrypted_doc(ak="second", exp="2030-01-02T00:00:00Z")))
    clock.t = exp - 60          # inside the 5 minute margin, before the 30 minute re-read
    assert prov.get().access_key_id == "second"


def test_failed_refresh_keeps_valid_credential(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token-config"
    path.write_text(json.dumps(encrypted_doc(ak="first")))
    clock = Clock(1_000_000.0)
    prov = TokenFileProvider(path, clock=clock)
    prov.get()
    path.write_text("garbage")
    clock.t += 31 * 60
    with caplog.at_level(logging.DEBUG):
        assert prov.get().access_key_id == "first"
    assert "keeping the current one" in caplog.text


def test_missing_file_is_clear(tmp_path: Path) -> None:
    prov = TokenFileProvider(tmp_path / "nope")
    with pytest.raises(CredentialError, match=r"credential_path .*nope: cannot read"):
        prov.get()


def test_no_secret_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token-config"
    path.write_text(json.dumps(encrypted_doc()))
    with caplog.at_level(logging.DEBUG):
        cred = TokenFileProvider(path).get()
        logging.getLogger("test").info("got %s %r", cred, cred)
    assert "loaded cloud credentials" in caplog.text
    assert SK not in caplog.text and TOKEN not in caplog.text
    ours = caplog.records[0].getMessage()
    assert "loaded cloud credentials" in ours
    assert "LTAIak" not in ours            # even the key id is shortened in our own log line
    assert TOKEN not in repr(TokenFileProvider(path))


# -- RAM role ------------------------------------------------------------------------------------

def test_ram_role_from_metadata(meta_server: MetaServer) -> None:
    meta_server.tree["ram/security-credentials/KubernetesWorkerRole"] = json.dumps({
        "AccessKeyId": "STS.role", "AccessKeySecret": SK, "SecurityToken": TOKEN,
        "Expiration": "2030-01-01T00:00:00Z", "Code": "Success",
        "LastUpdated": "2029-12-31T18:00:00Z"})
    clock = Clock(1893456000.0 - 3600)
    prov = RamRoleProvider(MetadataClient(meta_server.url, sleep=lambda s: None), clock=clock)
    cred = prov.get()
    assert (cred.access_key_id, cred.kind, prov.role) == ("STS.role", "sts", "KubernetesWorkerRole")
    hits = len(meta_server.hits)
    prov.get()
    assert len(meta_server.hits) == hits            # cached while valid
    clock.t = 1893456000.0 - 60
    prov.get()
    assert len(meta_server.hits) == hits + 1        # refreshed near expiry


def test_ram_role_not_ready(meta_server: MetaServer) -> None:
    meta_server.tree["ram/security-credentials/KubernetesWorkerRole"] = json.dumps(
        {"Code": "Failure"})
    prov = RamRoleProvider(MetadataClient(meta_server.url, sleep=lambda s: None))
    with pytest.raises(CredentialError, match=r"instance RAM role.*not ready"):
        prov.get()


def test_no_ram_role(meta_server: MetaServer) -> None:
    meta_server.tree["ram/security-credentials/"] = ""
    prov = RamRoleProvider(MetadataClient(meta_server.url, sleep=lambda s: None))
    with pytest.raises(CredentialError, match="none attached"):
        prov.get()


# -- selection -----------------------------------------------------------------------------------

def test_provider_order(tmp_path: Path) -> None:
    assert isinstance(provider_from_config(access_key="a", access_secret="b",
                                           credential_path="/x"), StaticProvider)
    assert isinstance(provider_from_config(credential_path=str(tmp_path / "t")),
                      TokenFileProvider)
    assert isinstance(provider_from_config(), RamRoleProvider)


def test_addon_secret_files_replace_the_static_key_as_upstream(tmp_path: Path) -> None:
    """Upstream: /var/alibaba-addon-secret/{access-key-id,access-key-secret}, when both exist,
    replace eni_conf's access_key/access_secret."""
    (tmp_path / "access-key-id").write_text("LTAIaddon\n")
    prov = provider_from_config(access_key="a", access_secret="b", addon_secret_dir=tmp_path)
    assert prov.get().access_key_id == "a"            # one file alone: not used
    (tmp_path / "access-key-secret").write_text(SK + "\n")
    cred = provider_from_config(access_key="a", access_secret="b",
                                addon_secret_dir=tmp_path).get()
    assert (cred.access_key_id, cred.access_key_secret.reveal()) == ("LTAIaddon", SK)
    assert SK not in repr(cred)
    assert isinstance(provider_from_config(addon_secret_dir=tmp_path / "none"), RamRoleProvider)


def test_an_unreadable_addon_secret_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "access-key-id").mkdir()           # a directory: cannot be read as a file
    (tmp_path / "access-key-secret").write_text(SK)
    with pytest.raises(CredentialError, match="access-key-id: cannot be read") as err:
        provider_from_config(addon_secret_dir=tmp_path)
    assert SK not in str(err.value)


@pytest.mark.parametrize(("ak", "sk", "field"), [("a", "", "access_secret"),
                                                  ("", "b", "access_key")])
def test_half_static_credentials_rejected(ak: str, sk: str, field: str) -> None:
    with pytest.raises(CredentialError, match=field):
        provider_from_config(access_key=ak, access_secret=sk)


def test_static_provider_repr_hides_secret() -> None:
    prov = StaticProvider("LTAIak", SK)
    assert SK not in repr(prov) and SK not in repr(prov.get())
