"""Request signature verification in the three styles Alibaba Cloud SDKs sign with.

**ACS3** (``Authorization: ACS3-HMAC-SHA256 …`` or ``ACS3-HMAC-SM3 …``; the new Python SDK,
alibabacloud-tea-openapi 0.4, by default): method, the unencoded pathname, the query sorted by key
with values percent-encoded by ``quote(v, safe='~')``, every header sent at signing time
(lowercased, values stripped, sorted; listed in ``SignedHeaders``) and the ``x-acs-content-sha256``
payload hash (SHA-256, or SM3 for ``ACS3-HMAC-SM3``) make the canonical request; the signature is
the hex HMAC of ``<algorithm>\n<hex hash of it>``.

**RPC** (``Signature`` parameter, ``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``; the old
Python SDK aliyun-python-sdk-core, the Go SDK alibaba-cloud-sdk-go that upstream Terway uses, the
new SDK with ``signature_algorithm='v2'``): every parameter of the query and the form body but
``Signature``, sorted by name, ``name=value`` percent-encoded (RFC 3986, ``~`` kept) and joined
by ``&``; the string to sign is ``<METHOD>&%2F&<that, percent-encoded again>`` and the signature
``base64(HMAC-SHA1(secret + "&", it))``.

We recompute the same string from what arrived on the wire and compare HMACs in constant time,
then check the timestamp window and the nonce. Refusals are ``ApiError`` with the cloud's codes.
"""

from __future__ import annotations

import base64
import calendar
import functools
import hashlib
import hmac
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import quote, unquote

from emulator.model.errors import ApiError
from emulator.wire import sm3

ALGORITHM = "ACS3-HMAC-SHA256"
SM3_ALGORITHM = "ACS3-HMAC-SM3"
ACS3_ALGORITHMS = (ALGORITHM, SM3_ALGORITHM)
RPC_METHOD = "HMAC-SHA1"  # the RPC style's SignatureMethod (and Principal.algorithm for it)
RPC_VERSION = "1.0"
# the RPC style's signing parameters: checked here, never handed to the model
RPC_SIGNING_PARAMS = frozenset({
    "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "SignatureType",
    "AccessKeyId", "SecurityToken", "Timestamp", "Format", "Action", "Version",
})
FORM_TYPE = "application/x-www-form-urlencoded"
DEFAULT_ACCESS_KEY_ID = "LTAIemulatorAccessKey"
DEFAULT_ACCESS_KEY_SECRET = "emulator-secret"
MAX_CLOCK_SKEW_S = 15 * 60.0
_SIGNATURE_MISMATCH = "Specified signature is not matched with our calculation."
# the Authorization value exactly as the SDK lays it out: ``{_SDK_PREFIX}<ak>,SignedHeaders=<a;b>,
# Signature=<hex>`` with no blank and no other comma; any other layout takes the general parse
_SDK_PREFIX = f"{ALGORITHM} Credential="
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # the payload hash of every bodiless RPC call
# what ``quote(v, safe='~')`` leaves untouched: such values (most of them) skip the quote call
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
# what ``quote(v, safe='~')`` makes of each other ASCII character: one byte, ``%XX``
_ASCII_ESCAPES = {i: f"%{i:02X}" for i in range(128) if not _UNRESERVED.fullmatch(chr(i))}


def incomplete(why: str) -> ApiError:
    """A missing or malformed Authorization header (the cloud answers 400 IncompleteSignature)."""
    return ApiError(
        "IncompleteSignature", f"The request signature does not conform to Aliyun standards. {why}"
    )


def _missing(param: str) -> ApiError:
    """An RPC-style signing parameter that is absent (the gateway's ``Missing{Parameter}``)."""
    return ApiError(f"Missing{param}", f"{param} is mandatory for this action.")


def _mismatch(server_string_to_sign: str) -> ApiError:
    """A wrong secret or a changed request: the cloud shows its own string to sign."""
    return ApiError(
        "SignatureDoesNotMatch",
        f"{_SIGNATURE_MISMATCH} server string to sign is:{server_string_to_sign}",
    )


class Principal(NamedTuple):
    """Who signed a request: the AccessKey id (never the secret), whether it was an STS token,
    and the signature style (``ACS3-HMAC-SHA256``, ``ACS3-HMAC-SM3`` or ``HMAC-SHA1`` for RPC).

    A NamedTuple, not a frozen dataclass: it is built on every request and is cheaper so."""

    access_key_id: str
    sts: bool = False
    algorithm: str = ALGORITHM

    @property
    def rpc(self) -> bool:
        """Signed the RPC way: Action, Version and the rest are (signed) parameters."""
        return self.algorithm == RPC_METHOD


@dataclass
class Credentials:
    """The AccessKey pairs (and STS tokens) the emulated cloud accepts. Thread-safe to read.

    ``repr`` shows only ids: secrets and tokens never reach logs or error messages.
    """

    _keys: dict[str, str] = field(default_factory=dict, repr=False)
    _tokens: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def default(cls) -> Credentials:
        """The documented pair: ``LTAIemulatorAccessKey`` / ``emulator-secret``."""
        return cls.of({DEFAULT_ACCESS_KEY_ID: DEFAULT_ACCESS_KEY_SECRET})

    @classmethod
    def of(cls, pairs: Mapping[str, str]) -> Credentials:
        creds = cls()
        for ak, secret in pairs.items():
            creds.add(ak, secret)
        return creds

    def add(self, access_key_id: str, access_key_secret: str) -> None:
        """Accept one more long-term AccessKey pair."""
        if not access_key_id or not access_key_secret:
            raise ValueError("access_key_id and access_key_secret must both be non-empty")
        self._keys[access_key_id] = access_key_secret

    def add_sts(self, access_key_id: str, access_key_secret: str, security_token: str) -> None:
        """Accept an STS triple: requests must carry ``x-acs-security-token`` equal to the token."""
        if not (access_key_id and access_key_secret and security_token):
            raise ValueError("STS access_key_id, access_key_secret and security_token are required")
        self._tokens[access_key_id] = (access_key_secret, security_token)

    @property
    def access_key_ids(self) -> list[str]:
        return sorted({*self._keys, *self._tokens})

    def __repr__(self) -> str:
        return f"Credentials(access_key_ids={self.access_key_ids!r})"

    def secret_for(self, access_key_id: str, security_token: str | None) -> tuple[str, bool]:
        """The secret to verify with and whether it is an STS key; ApiError when not acceptable."""
        if access_key_id in self._tokens:
            secret, token = self._tokens[access_key_id]
            if security_token is None:
                raise ApiError(
                    "InvalidSecurityToken.MissingParameter", "SecurityToken is mandatory.", 400
                )
            if not hmac.compare_digest(token.encode(), security_token.encode()):
                raise ApiError(
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                    400,
                )
            return secret, True
        if access_key_id in self._keys:
            if security_token is not None:
                raise ApiError(
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                    400,
                )
            return self._keys[access_key_id], False
        raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)


class Authorization(NamedTuple):
    """The parsed ``Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…``
    (or ``ACS3-HMAC-SM3 …``).

    A NamedTuple (immutable, built per request, cheaper than a frozen dataclass)."""

    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str
    algorithm: str = ALGORITHM

    @classmethod
    def parse(cls, header: str | None) -> Authorization:
        if not header:
            raise incomplete("Authorization header is missing.")
        sdk = _sdk_layout(header.strip())
        if sdk is not None:  # the SDK's own layout: string methods, not the general parse below
            credential, signed, signature = sdk
            return cls(credential, tuple(signed.split(";")), signature.lower())
        return cls.parse_any_layout(header)

    @classmethod
    def parse_any_layout(cls, header: str) -> Authorization:
        """The general parse: blanks around items, any order, repeated keys (last wins)."""
        algorithm, _, rest = header.strip().partition(" ")
        if algorithm not in ACS3_ALGORITHMS:
            raise incomplete(f"Unsupported signature algorithm {algorithm!r}; use "
                             f"{' or '.join(ACS3_ALGORITHMS)}.")
        parts = dict(item.strip().partition("=")[::2] for item in rest.split(",") if "=" in item)
        missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not parts.get(k)]
        if missing:
            raise incomplete(f"Authorization lacks {', '.join(missing)}.")
        signed = tuple(parts["SignedHeaders"].split(";"))
        return cls(parts["Credential"], signed, parts["Signature"].lower(), algorithm)


def _sdk_layout(text: str) -> tuple[str, str, str] | None:
    """Credential, SignedHeaders and Signature when ``text`` has exactly the SDK's layout.

    What the regex ``{_SDK_PREFIX}([^,\\s]+),SignedHeaders=([^,\\s]+),Signature=([^,\\s]+)``
    matches (``str.split`` and ``\\s`` agree on what is blank), at two thirds of its cost."""
    if not text.startswith(_SDK_PREFIX):
        return None
    rest = text[len(_SDK_PREFIX):]
    if rest.count(",") != 2 or rest[:1].isspace() or len(rest.split(None, 1)) != 1:
        return None
    credential, sep, rest = rest.partition(",SignedHeaders=")
    signed, sep2, signature = rest.partition(",Signature=")
    if sep and sep2 and credential and signed and signature:
        return credential, signed, signature
    return None


def canonical_query(query: str | Mapping[str, str]) -> str:
    """The SDK's canonical query: keys sorted, values encoded by ``quote(value, safe='~')``.

    ``query`` is the raw query string or its already-decoded mapping (last value wins, as the
    SDK's dict can hold only one)."""
    if not query:
        return ""
    pairs = parse_query(query) if isinstance(query, str) else query
    return "&".join([f"{k}={_quote_value(pairs[k])}" for k in sorted(pairs)])


def _quote_value(value: str) -> str:
    """``quote(value, safe='~')``, skipping the call for values it would return unchanged and
    taking ``str.translate`` (half the cost) for other ASCII values."""
    if _UNRESERVED.fullmatch(value):
        return value
    return value.translate(_ASCII_ESCAPES) if value.isascii() else quote(value, safe="~")


def parse_query(query: str) -> dict[str, str]:
    """``dict(parse_qsl(query, keep_blank_values=True))`` without its per-field overhead.

    Same rules: fields split on ``&``, empty fields skipped, a field without ``=`` has an empty
    value, ``+`` means space, ``%XX`` is UTF-8 percent-decoding (invalid bytes replaced), and the
    last of repeated keys wins."""
    out: dict[str, str] = {}
    for field_ in query.split("&"):
        if not field_:
            continue
        name, _, value = field_.partition("=")
        if "+" in field_ or "%" in field_:
            name, value = unquote(name.replace("+", " ")), unquote(value.replace("+", " "))
        out[name] = value
    return out


def canonical_headers(
    headers: Mapping[str, Sequence[str]], signed: Iterable[str]
) -> tuple[str, str]:
    """``name:v1,v2\\n`` per signed header (values stripped and sorted) and the ``;``-list."""
    names = sorted(signed)
    lines = []
    for name in names:
        values = headers.get(name)
        if not values:
            raise incomplete(f"Signed header {name!r} is absent from the request.")
        if len(values) == 1:
            joined = values[0].strip()
        else:
            joined = ",".join(sorted(v.strip() for v in values))
        lines.append(f"{name}:{joined}\n")
    return "".join(lines), ";".join(names)


def _hash_hex(data: bytes, algorithm: str) -> str:
    """The hex payload/request hash of an ACS3 style: SHA-256, or SM3 for ACS3-HMAC-SM3."""
    if algorithm == ALGORITHM:
        return hashlib.sha256(data).hexdigest()
    return str(sm3.new(data).hexdigest())


def string_to_sign(canonical_request: str, algorithm: str = ALGORITHM) -> str:
    digest = _hash_hex(canonical_request.encode("utf-8"), algorithm)
    return f"{algorithm}\n{digest}"


def sign(secret: str, canonical_request: str, algorithm: str = ALGORITHM) -> str:
    """The hex HMAC (SHA-256 or SM3) the SDK puts in ``Signature=``."""
    # the key schedule is done once per secret, not per call
    mac = _keyed_hmac(secret, algorithm).copy()
    mac.update(string_to_sign(canonical_request, algorithm).encode("utf-8"))
    return mac.hexdigest()


@functools.lru_cache(maxsize=256)
def _keyed_hmac(secret: str, algorithm: str = ALGORITHM) -> hmac.HMAC:
    """An HMAC already keyed with ``secret``; callers ``copy()`` it (never update it).

    HMAC-SHA256, HMAC-SM3 for ``ACS3-HMAC-SM3``, HMAC-SHA1 (key ``secret + "&"``) for RPC."""
    key = secret.encode("utf-8")
    if algorithm == RPC_METHOD:
        return hmac.new(key + b"&", digestmod=hashlib.sha1)
    if algorithm == SM3_ALGORITHM:
        return hmac.new(key, digestmod=sm3.new)
    return hmac.new(key, digestmod=hashlib.sha256)


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``<METHOD>&%2F&<percent-encoded canonical query>`` over every parameter but Signature.

    The canonical query is ``name=value`` pairs sorted by name, each part encoded by
    ``quote(part, safe='~')`` (RFC 3986: what the SDKs' ``percentEncode`` gives)."""
    canonical = "&".join([
        f"{_quote_value(k)}={_quote_value(params[k])}" for k in sorted(params) if k != "Signature"
    ])
    # ``quote(canonical, safe='~')``: its parts are already encoded, so only the '%' escapes and
    # the '=' and '&' joiners are left to encode (three C-level replaces, not quote's loop)
    encoded = canonical.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
    return f"{method}&%2F&{encoded}"


def rpc_sign(secret: str, string_to_sign_: str) -> str:
    """``base64(HMAC-SHA1(secret + "&", string to sign))``: the RPC style's ``Signature``."""
    mac = _keyed_hmac(secret, RPC_METHOD).copy()
    mac.update(string_to_sign_.encode("utf-8"))
    return base64.b64encode(mac.digest()).decode("ascii")


def rpc_params(
    query: str | Mapping[str, str], headers: Mapping[str, Sequence[str]], body: bytes
) -> Mapping[str, str]:
    """Every parameter an RPC-style request carries: the query's, then a form body's (read
    only: without a form body it is the query mapping itself, not a copy)."""
    params = parse_query(query) if isinstance(query, str) else query
    if body and (_one(headers, "content-type") or "").startswith(FORM_TYPE):
        return {**params, **parse_query(body.decode("utf-8", "replace"))}
    return params


def canonical_request(
    method: str,
    path: str,
    query: str | Mapping[str, str],
    headers: Mapping[str, Sequence[str]],
    signed: Iterable[str],
    payload_hash: str,
) -> str:
    header_block, signed_list = canonical_headers(headers, signed)
    uri = unquote(path) or "/"
    lines = (method, uri, canonical_query(query), header_block, signed_list, payload_hash)
    return "\n".join(lines)


class NonceCache:
    """Remembers signature nonces for the clock-skew window so a replayed request is refused."""

    def __init__(self, ttl_s: float = MAX_CLOCK_SKEW_S, limit: int = 1_000_000) -> None:
        self._ttl = ttl_s
        self._limit = limit
        self._seen: set[str] = set()
        self._order: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def check_and_add(self, nonce: str, now: float) -> None:
        with self._lock:
            while self._order and (
                self._order[0][0] < now - self._ttl or len(self._order) >= self._limit
            ):
                self._seen.discard(self._order.popleft()[1])
            if nonce in self._seen:
                raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")
            self._seen.add(nonce)
            self._order.append((now, nonce))


@functools.lru_cache(maxsize=4)  # consecutive requests mostly share the same second
def _parse_acs_date(value: str) -> float:
    """``2024-01-02T03:04:05Z`` → epoch seconds (hand-parsed: strptime is slow per request)."""
    try:
        if len(value) != 20 or value[4] != "-" or value[10] != "T" or value[19] != "Z":
            raise ValueError(value)
        fields = (value[0:4], value[5:7], value[8:10], value[11:13], value[14:16], value[17:19])
        y, mo, d, h, mi, sec = (int(f) for f in fields)
        return float(calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)))
    except ValueError:
        raise ApiError(
            "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
        ) from None


@dataclass
class Verifier:
    """Checks ACS3 signatures against a ``Credentials`` store; raises ApiError, never mutates."""

    credentials: Credentials = field(default_factory=Credentials.default)
    check_clock: bool = True
    check_nonce: bool = True
    nonces: NonceCache = field(default_factory=NonceCache, repr=False)

    def verify(
        self,
        method: str,
        path: str,
        query: str | Mapping[str, str],
        headers: Mapping[str, Sequence[str]],
        body: bytes,
    ) -> Principal:
        """Accept the request or raise; ``headers`` maps lowercase names to all their values.

        No ``Authorization`` header but a ``Signature`` or ``AccessKeyId`` parameter: the RPC
        style (``verify_rpc``); otherwise ACS3, whose refusal for a missing header stays
        ``IncompleteSignature``."""
        header = _one(headers, "authorization")
        if not header:
            params = rpc_params(query, headers, body)
            if "Signature" in params or "AccessKeyId" in params:
                return self.verify_rpc(method, params)
        auth = Authorization.parse(header)
        unsigned = headers.keys() - set(auth.signed_headers)  # a few; set difference is in C
        if "host" in unsigned or any(name.startswith("x-acs-") for name in unsigned):
            _refuse_unsigned(headers, unsigned)
        token = _one(headers, "x-acs-security-token")
        secret, sts = self.credentials.secret_for(auth.access_key_id, token)
        algorithm = auth.algorithm
        payload_hash = _one(headers, "x-acs-content-sha256") or ""
        if algorithm == ALGORITHM:
            body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        else:
            body_hash = _hash_hex(body, algorithm)
        if not _same(payload_hash, body_hash):
            raise ApiError("SignatureDoesNotMatch", f"{_SIGNATURE_MISMATCH} Body hash differs.")
        creq = canonical_request(method, path, query, headers, auth.signed_headers, payload_hash)
        if not _same(sign(secret, creq, algorithm), auth.signature):
            raise _mismatch(string_to_sign(creq, algorithm).replace("\n", " "))
        self._check_freshness(_one(headers, "x-acs-date"), _one(headers, "x-acs-signature-nonce"))
        return Principal(auth.access_key_id, sts, algorithm)

    def verify_rpc(self, method: str, params: Mapping[str, str]) -> Principal:
        """The RPC style: ``params`` is every query and form-body parameter of the request.

        Checks in the cloud's order: the signing parameters are there and of a supported
        method/version, the AccessKey (and STS token) is known, the signature matches (else the
        server's string to sign in the message), then the Timestamp window and the nonce."""
        for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp"):
            if not params.get(name):
                raise _missing(name)
        if params.get("SignatureMethod", RPC_METHOD) != RPC_METHOD:
            raise ApiError("InvalidSignatureMethod", "Specified signature method is not valid.")
        if params.get("SignatureVersion", RPC_VERSION) != RPC_VERSION:
            raise ApiError(
                "InvalidSignatureVersion", "Specified parameter SignatureVersion is not valid.")
        access_key_id = params["AccessKeyId"]
        secret, sts = self.credentials.secret_for(access_key_id, params.get("SecurityToken"))
        server_sts = rpc_string_to_sign(method, params)
        if not _same(rpc_sign(secret, server_sts), params["Signature"]):
            raise _mismatch(server_sts)
        self._check_freshness(params["Timestamp"], params["SignatureNonce"])
        return Principal(access_key_id, sts, RPC_METHOD)

    def _check_freshness(self, date: str | None, nonce: str | None) -> None:
        """The timestamp (``x-acs-date`` or RPC ``Timestamp``) window, then the nonce."""
        now = time.time()
        if (
            self.check_clock
            and date is not None
            and abs(_parse_acs_date(date) - now) > MAX_CLOCK_SKEW_S
        ):
            raise ApiError(
                "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        if self.check_nonce and nonce:
            self.nonces.check_and_add(nonce, now)


def _same(a: str, b: str) -> bool:
    """Constant-time equality that also takes non-ASCII input (``compare_digest`` on ``str``
    raises TypeError for it: a crafted header must get a refusal, not an emulator error)."""
    try:
        return hmac.compare_digest(a, b)
    except TypeError:  # non-ASCII: compare the bytes (still constant-time)
        return hmac.compare_digest(a.encode("utf-8", "surrogateescape"),
                                   b.encode("utf-8", "surrogateescape"))


def _refuse_unsigned(headers: Mapping[str, Sequence[str]], unsigned: set[str]) -> None:
    """Name the first header, in arrival order, that had to be signed and was not."""
    for name in headers:
        if name in unsigned and (name == "host" or name.startswith("x-acs-")):
            raise incomplete(f"Header {name!r} must be signed.")


def _one(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def header_map(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Lowercase header name → every value it arrived with (the form ``Verifier`` reads)."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return out
