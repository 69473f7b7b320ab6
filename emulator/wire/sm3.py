"""SM3 (GB/T 32905-2016), the hash of the ``ACS3-HMAC-SM3`` signature style.

``new()`` is OpenSSL's SM3 through ``hashlib`` when the interpreter's OpenSSL has it, else the
pure-Python ``SM3`` below (same interface: ``update``, ``copy``, ``digest``, ``hexdigest``,
``digest_size``, ``block_size``, so ``hmac`` takes either). SM3 is only on the path of requests
signed with it; the pure-Python one costs ~0.1 ms per short message.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

_IV = (0x7380166F, 0x4914B2B9, 0x172442D7, 0xDA8A0600,
       0xA96F30BC, 0x163138AA, 0xE38DEE4D, 0xB0FB0E4E)
_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & _MASK


# T_j rotated left by j (mod 32), precomputed: the compression function uses only that
_T_ROT = tuple(_rotl(0x79CC4519 if j < 16 else 0x7A879D8A, j) for j in range(64))


def _p0(x: int) -> int:
    return x ^ _rotl(x, 9) ^ _rotl(x, 17)


def _p1(x: int) -> int:
    return x ^ _rotl(x, 15) ^ _rotl(x, 23)


def _compress(v: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    """One 64-byte block into the chaining value (the standard's CF)."""
    w = list(struct.unpack(">16I", block))
    for j in range(16, 68):
        w.append(_p1(w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)) ^ _rotl(w[j - 13], 7) ^ w[j - 6])
    a, b, c, d, e, f, g, h = v
    for j in range(64):
        a12 = _rotl(a, 12)
        ss1 = _rotl((a12 + e + _T_ROT[j]) & _MASK, 7)
        ss2 = ss1 ^ a12
        if j < 16:
            ff, gg = a ^ b ^ c, e ^ f ^ g
        else:
            ff, gg = (a & b) | (a & c) | (b & c), (e & f) | (~e & g)
        tt1 = (ff + d + ss2 + (w[j] ^ w[j + 4])) & _MASK
        tt2 = (gg + h + ss1 + w[j]) & _MASK
        a, b, c, d = tt1, a, _rotl(b, 9), c
        e, f, g, h = _p0(tt2), e, _rotl(f, 19), g
    return tuple(x ^ y for x, y in zip(v, (a, b, c, d, e, f, g, h), strict=True))


class SM3:
    """A ``hashlib``-style SM3 object in pure Python (the fallback when OpenSSL lacks SM3)."""

    name = "sm3"
    digest_size = 32
    block_size = 64

    def __init__(self, data: bytes = b"") -> None:
        self._v: tuple[int, ...] = _IV
        self._buf = b""
        self._length = 0
        self.update(data)

    def update(self, data: bytes) -> None:
        self._length += len(data)
        buf = self._buf + bytes(data)
        full = len(buf) - len(buf) % 64
        for i in range(0, full, 64):
            self._v = _compress(self._v, buf[i:i + 64])
        self._buf = buf[full:]

    def copy(self) -> SM3:
        other = SM3()
        other._v, other._buf, other._length = self._v, self._buf, self._length
        return other

    def digest(self) -> bytes:
        bits = self._length * 8
        tail = self._buf + b"\x80" + b"\x00" * ((55 - len(self._buf)) % 64) + struct.pack(
            ">Q", bits)
        v = self._v
        for i in range(0, len(tail), 64):
            v = _compress(v, tail[i:i + 64])
        return struct.pack(">8I", *v)

    def hexdigest(self) -> str:
        return self.digest().hex()


def _openssl_sm3() -> Callable[..., Any] | None:
    try:
        hashlib.new("sm3", b"abc")
    except ValueError:
        return None

    def make(data: bytes = b"") -> Any:
        return hashlib.new("sm3", data)

    return make


_OPENSSL = _openssl_sm3()
HAVE_OPENSSL_SM3 = _OPENSSL is not None


def new(data: bytes = b"") -> Any:
    """An SM3 hash object: OpenSSL's when available, else the pure-Python ``SM3``."""
    return _OPENSSL(data) if _OPENSSL is not None else SM3(data)
