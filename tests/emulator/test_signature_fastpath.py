"""The hot-path query helpers agree with the stdlib code they replaced, on random input."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from urllib.parse import parse_qsl, quote, urlencode

import pytest

from emulator.model.errors import ApiError
from emulator.wire.signature import (
    EMPTY_SHA256,
    Authorization,
    _sdk_layout,
    canonical_query,
    parse_query,
    sign,
    string_to_sign,
)

# ASCII specials, percent signs, plus, UTF-8, an unpaired surrogate-free astral char, spaces
ALPHABET = "aZ09-_.~ +%&=;/?#*'!()[]@$,:\"<>\\^`{|}\té€😀\x00\x7f"


def _text(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(n + 1)))


def _old_canonical_query(query: str) -> str:
    pairs = dict(parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{k}={quote(pairs[k], safe='~')}" for k in sorted(pairs))


@pytest.mark.parametrize("seed", range(20))
def test_parse_query_matches_parse_qsl_on_random_raw_strings(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(200):
        raw = _text(rng, 24)
        assert parse_query(raw) == dict(parse_qsl(raw, keep_blank_values=True)), raw


@pytest.mark.parametrize("seed", range(20))
def test_canonical_query_matches_quote_on_random_params(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        params = {_text(rng) or "k": _text(rng) for _ in range(rng.randrange(6))}
        for raw in (urlencode(params), urlencode(params, quote_via=quote), _text(rng, 24)):
            assert canonical_query(raw) == _old_canonical_query(raw), raw
            assert canonical_query(parse_query(raw)) == _old_canonical_query(raw), raw


@pytest.mark.parametrize("raw, expected", [
    ("", {}),
    ("&&", {}),
    ("a", {"a": ""}),
    ("a=", {"a": ""}),
    ("=v", {"": "v"}),
    ("a=1&a=2", {"a": "2"}),
    ("a=b=c", {"a": "b=c"}),
    ("a+b=c+d", {"a b": "c d"}),
    ("a=%zz%4", {"a": "%zz%4"}),          # malformed escapes stay literal, as in parse_qsl
    ("a=%ff", {"a": "\ufffd"}),           # invalid UTF-8 is replaced, as in parse_qsl
    ("a=1;b=2", {"a": "1;b=2"}),          # ';' is not a separator (Python >= 3.10)
])
def test_parse_query_edge_cases(raw: str, expected: dict[str, str]) -> None:
    assert parse_query(raw) == expected == dict(parse_qsl(raw, keep_blank_values=True))


def test_sign_with_cached_key_equals_fresh_hmac_for_many_secrets() -> None:
    creq = "POST\n/\nA=1\nhost:x\n\nhost\n" + EMPTY_SHA256
    for secret in ("s", "emulator-secret", "é" * 100, "k" * 200):
        fresh = hmac.new(secret.encode(), string_to_sign(creq).encode(), hashlib.sha256)
        assert sign(secret, creq) == fresh.hexdigest()
        assert sign(secret, creq) == fresh.hexdigest()  # the cached key is not consumed


def test_empty_sha256_constant() -> None:
    assert hashlib.sha256(b"").hexdigest() == EMPTY_SHA256


def _parsed(parse: object, header: str) -> object:
    assert callable(parse)
    try:
        return parse(header)
    except ApiError as err:
        return (err.code, err.message)


@pytest.mark.parametrize("seed", range(10))
def test_authorization_fast_path_matches_general_parse(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["ACS3-HMAC-SHA256", " ", "  ", "Credential=", "SignedHeaders=", "Signature=", ",",
              ", ", "=", ";", "ak", "host;x-acs-date", "ABCdef09", "\t", "\xa0", "HMAC"]
    sdk = ("ACS3-HMAC-SHA256 Credential=LTAIak,SignedHeaders=accept;host;x-acs-date,"
           "Signature=ABCDEF0123")
    headers = [sdk, f" {sdk} ", sdk.replace(",", ", "), sdk.replace("Credential=", "Credential= "),
               sdk.replace("LTAIak", "LTAI=ak"), sdk + ",Signature=ff", sdk.replace("ABC", "")]
    headers += ["".join(rng.choice(pieces) for _ in range(rng.randrange(12))) for _ in range(300)]
    headers += [f"ACS3-HMAC-SHA256 Credential={rng.choice(pieces)},SignedHeaders="
                f"{rng.choice(pieces)},Signature={rng.choice(pieces)}" for _ in range(300)]
    for header in filter(None, headers):  # parse() refuses "" before either path
        assert _parsed(Authorization.parse, header) == _parsed(
            Authorization.parse_any_layout, header), header


@pytest.mark.parametrize("seed", range(10))
def test_sdk_layout_matches_the_regex_it_replaced(seed: int) -> None:
    regex = re.compile(r"ACS3-HMAC-SHA256 Credential=([^,\s]+),SignedHeaders=([^,\s]+),"
                       r"Signature=([^,\s]+)")
    rng = random.Random(seed)
    pieces = ["ACS3-HMAC-SHA256 Credential=", ",SignedHeaders=", ",Signature=", ",", ";", "=",
              "ak", "host;x-acs-date", "ABC09", " ", "\t", "\xa0", "\u2003", "\x1c", "\x85", ""]
    texts = ["ACS3-HMAC-SHA256 Credential=" + "".join(rng.choice(pieces) for _ in range(
        rng.randrange(8))) for _ in range(1000)]
    for text in (t.strip() for t in texts):  # parse() strips before either
        match = regex.fullmatch(text)
        assert _sdk_layout(text) == (match.groups() if match else None), repr(text)
