"""Where the daemon's cloud credentials come from, in upstream's order.

0. upstream's add-on secret files (``/var/alibaba-addon-secret/access-key-id`` and
   ``access-key-secret``) when both exist: they replace eni_conf's AccessKey,
1. ``access_key`` / ``access_secret`` in eni_conf (static),
2. ``credential_path``: a token file (upstream's addon token), re-read every 30 min or when expired,
3. else the instance RAM role from metadata, refreshed before it expires.

Secret values live in ``Secret`` so that reprs, logs and exceptions show ``***``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from terway.cloud.metadata import MetadataClient, MetadataError

log = logging.getLogger(__name__)

TOKEN_FILE_REFRESH_S = 30 * 60.0
EXPIRY_MARGIN_S = 5 * 60.0


class Secret:
    """A secret string that refuses to show itself: ``str``/``repr``/format give ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value

    def reveal(self) -> str:
        """The actual value: only for handing to the signer."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("Secret is not picklable")


class CredentialError(Exception):
    """Credentials could not be obtained. Messages name the source and field, never a value."""


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None = None
    expiration: float | None = None     # unix time; None = does not expire
    source: str = ""                    # "static" | "token_file:<path>" | "ram_role:<role>"

    @property
    def kind(self) -> str:
        """The SDK's credential type: ``sts`` with a token, else ``access_key``."""
        return "sts" if self.security_token else "access_key"

    def expires_within(self, now: float, seconds: float) -> bool:
        return self.expiration is not None and now >= self.expiration - seconds


class CredentialProvider(Protocol):
    def get(self) -> Credential: ...


class StaticProvider:
    """AK/SK from eni_conf."""

    def __init__(self, access_key_id: str, access_key_secret: str | Secret) -> None:
        if not access_key_id:
            raise CredentialError("access_key: empty")
        secret = access_key_secret if isinstance(access_key_secret, Secret) else Secret(
            access_key_secret)
        if not secret:
            raise CredentialError("access_secret: empty")
        self._cred = Credential(access_key_id, secret, source="static")

    def __repr__(self) -> str:
        return f"StaticProvider(access_key_id={self._cred.access_key_id!r})"

    def get(self) -> Credential:
        return self._cred


class _Refreshing:
    """Caches a credential; reloads after ``refresh_s`` or when it is about to expire."""

    def __init__(self, refresh_s: float | None, clock: Callable[[], float]) -> None:
        self._refresh_s = refresh_s
        self._clock = clock
        self._cred: Credential | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def _load(self) -> Credential:
        raise NotImplementedError

    def _stale(self, now: float) -> bool:
        if self._cred is None:
            return True
        if self._refresh_s is not None and now - self._loaded_at >= self._refresh_s:
            return True
        return self._cred.expires_within(now, EXPIRY_MARGIN_S)

    def get(self) -> Credential:
        with self._lock:
            now = self._clock()
            if self._stale(now):
                try:
                    self._cred = self._load()
                    self._loaded_at = now
                    log.info("loaded cloud credentials from %s (key id %s, expires %s)",
                             self._cred.source, _mask_id(self._cred.access_key_id),
                             _fmt_time(self._cred.expiration))
                except CredentialError:
                    # Keep serving a still-valid credential when a refresh fails.
                    if self._cred is None or self._cred.expires_within(now, 0):
                        raise
                    log.warning("credential refresh from %s failed; keeping the current one",
                                self._cred.source)
            assert self._cred is not None
            return self._cred


class TokenFileProvider(_Refreshing):
    """Upstream's token file (``/var/addon/token-config``), re-read every 30 minutes.

    Two layouts are accepted:

    * upstream's encrypted one: ``access.key.id``, ``access.key.secret``, ``security.token``,
      ``expiration`` (``2006-01-02T15:04:05Z``) and ``keyring``; each value is
      base64(IV ‖ AES-CBC(keyring, PKCS#7-padded value));
    * a plain one with the metadata/STS names ``AccessKeyId``, ``AccessKeySecret``,
      ``SecurityToken``, ``Expiration`` (values in clear).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        refresh_s: float = TOKEN_FILE_REFRESH_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(refresh_s, clock)
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TokenFileProvider(path={str(self.path)!r})"

    def _load(self) -> Credential:
        where = f"credential_path {self.path}"
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            raise CredentialError(f"{where}: cannot read ({e.strerror})") from None
        return parse_token_file(raw, source=f"token_file:{self.path}")


class RamRoleProvider(_Refreshing):
    """STS credentials of the instance RAM role, from metadata."""

    def __init__(
        self,
        metadata: MetadataClient,
        role: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(None, clock)
        self._metadata = metadata
        self.role = role

    def __repr__(self) -> str:
        return f"RamRoleProvider(role={self.role!r})"

    def _load(self) -> Credential:
        try:
            if not self.role:
                roles = self._metadata.ram_roles()
                if not roles:
                    raise CredentialError("instance RAM role: none attached to this instance")
                self.role = roles[0]
            doc = self._metadata.ram_role_credentials(self.role)
        except MetadataError as e:
            raise CredentialError(f"instance RAM role: {e}") from None
        return _credential_from_fields(doc, _PLAIN_KEYS, f"ram_role:{self.role}", None)


_PLAIN_KEYS = ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")
_ENCRYPTED_KEYS = ("access.key.id", "access.key.secret", "security.token", "expiration")


def parse_token_file(raw: bytes, *, source: str = "token_file") -> Credential:
    """Parse a token file's bytes into a credential (see ``TokenFileProvider``)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise CredentialError(f"{source}: not valid JSON") from None
    if not isinstance(doc, dict):
        raise CredentialError(f"{source}: expected a JSON object")
    if "access.key.id" in doc:
        keyring = doc.get("keyring")
        if not isinstance(keyring, str) or not keyring:
            raise CredentialError(f"{source}: field 'keyring' missing or empty")
        return _credential_from_fields(doc, _ENCRYPTED_KEYS, source, keyring.encode())
    if "AccessKeyId" in doc:
        return _credential_from_fields(doc, _PLAIN_KEYS, source, None)
    raise CredentialError(f"{source}: neither 'access.key.id' nor 'AccessKeyId' present")


def _credential_from_fields(
    doc: Mapping[str, Any], keys: tuple[str, str, str, str], source: str, keyring: bytes | None
) -> Credential:
    k_id, k_secret, k_token, k_exp = keys

    def field(name: str, required: bool) -> str:
        value = doc.get(name)
        if value is None or value == "":
            if required:
                raise CredentialError(f"{source}: field {name!r} missing or empty")
            return ""
        if not isinstance(value, str):
            raise CredentialError(f"{source}: field {name!r} must be a string")
        return _decrypt(value, keyring, source, name) if keyring is not None else value

    exp_text = doc.get(k_exp)
    expiration = _parse_time(exp_text, source, k_exp) if exp_text else None
    token = field(k_token, required=False)
    return Credential(
        access_key_id=field(k_id, required=True),
        access_key_secret=Secret(field(k_secret, required=True)),
        security_token=Secret(token) if token else None,
        expiration=expiration,
        source=source,
    )


def _parse_time(value: object, source: str, name: str) -> float:
    if not isinstance(value, str):
        raise CredentialError(f"{source}: field {name!r} must be a string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise CredentialError(
            f"{source}: field {name!r} is not a time like 2006-01-02T15:04:05Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _decrypt(value: str, keyring: bytes, source: str, name: str) -> str:
    """base64(IV ‖ AES-CBC ciphertext) → text, as upstream's addon token encodes it."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CredentialError(f"{source}: field {name!r} is not valid base64") from None
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:  # pragma: no cover - depends on the image
        raise CredentialError(
            f"{source}: encrypted token file needs the 'cryptography' package") from None
    if len(keyring) not in (16, 24, 32):
        raise CredentialError(f"{source}: field 'keyring' must be 16, 24 or 32 bytes")
    if len(data) < 32 or len(data) % 16:
        raise CredentialError(f"{source}: field {name!r} is not an AES-CBC payload")
    dec = Cipher(algorithms.AES(keyring), modes.CBC(data[:16])).decryptor()
    plain = dec.update(data[16:]) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
        raise CredentialError(f"{source}: field {name!r} does not decrypt with 'keyring'")
    try:
        return plain[:-pad].decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{source}: field {name!r} does not decrypt with 'keyring'") from None


def encrypt_token_value(value: str, keyring: bytes, iv: bytes) -> str:
    """The inverse of the token file encoding (for tests and the emulator's fixtures)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    raw = value.encode("utf-8")
    pad = 16 - len(raw) % 16
    enc = Cipher(algorithms.AES(keyring), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(raw + bytes([pad]) * pad) + enc.finalize()).decode()


ADDON_SECRET_DIR = "/var/alibaba-addon-secret"


def addon_secret(directory: str | Path = ADDON_SECRET_DIR) -> tuple[str, Secret] | None:
    """The AccessKey in upstream's add-on secret files (``access-key-id`` and
    ``access-key-secret`` in ``directory``, as ACK's add-on manager mounts them), or None when
    either is absent. Upstream lets them replace eni_conf's ``access_key``/``access_secret``.
    Surrounding whitespace is dropped (a file written with ``echo`` ends in a newline)."""
    values = []
    for name in ("access-key-id", "access-key-secret"):
        path = Path(directory) / name
        try:
            values.append(path.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialError(f"{path}: cannot be read ({type(exc).__name__})") from None
    key_id, secret = values
    if not key_id or not secret:
        return None
    return key_id, Secret(secret)


def provider_from_config(
    *,
    access_key: str = "",
    access_secret: str | Secret = "",
    credential_path: str = "",
    metadata: MetadataClient | None = None,
    clock: Callable[[], float] = time.time,
    addon_secret_dir: str | Path | None = None,
) -> CredentialProvider:
    """Pick the provider as upstream does: the add-on secret files (when ``addon_secret_dir``
    holds both), else AK/SK, else token file, else the RAM role."""
    addon = addon_secret(addon_secret_dir) if addon_secret_dir else None
    if addon is not None:
        return StaticProvider(*addon)
    if access_key or access_secret:
        if not access_key:
            raise CredentialError("access_key: required when access_secret is set")
        if not access_secret:
            raise CredentialError("access_secret: required when access_key is set")
        return StaticProvider(access_key, access_secret)
    if credential_path:
        return TokenFileProvider(credential_path, clock=clock)
    return RamRoleProvider(metadata or MetadataClient(), clock=clock)


def _mask_id(key_id: str) -> str:
    return key_id[:4] + "…" if len(key_id) > 4 else "…"


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
