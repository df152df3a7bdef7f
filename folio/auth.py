"""Access control: the web UI's password hash, the API key check, and the open-bind refusal.

Password hashes are self-describing strings, so the cost can be raised later without breaking
stored hashes:

    scrypt$n=16384,r=8,p=1$<salt, standard base64>$<32-byte key, standard base64>

scrypt (hashlib, RFC 7914) with a random 16-byte salt per hash: two hashes of one password
differ, and each guess costs ~16 MiB of memory and tens of milliseconds. Only this string is
stored (the `ui_password_hash` setting); `folio password-hash` makes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass

SCHEME = "scrypt"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Upper bounds on parameters read from a stored hash: a typo must not make every login use
# gigabytes of memory.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_SETTING = "ui_password_hash (FOLIO_UI_PASSWORD_HASH)"


@dataclass(frozen=True)
class PasswordHash:
    """A parsed `scrypt$n=..,r=..,p=..$salt$key` string."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def format(self) -> str:
        salt = base64.b64encode(self.salt).decode("ascii")
        key = base64.b64encode(self.key).decode("ascii")
        return f"{SCHEME}$n={self.n},r={self.r},p={self.p}${salt}${key}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL refuses scrypt above its default 32 MiB unless maxmem allows it: 128 r n bytes of
    # working memory, plus room for the p parallel blocks.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length
    )


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password`, in the format above."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return PasswordHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, key).format()


def parse_password_hash(stored: str) -> PasswordHash:
    """Read a stored hash; a malformed one raises ValueError naming the setting."""
    parts = stored.strip().split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(
            f"{_SETTING} is not a Folio password hash: expected "
            f"'{SCHEME}$n=...,r=...,p=...$<salt>$<hash>'; make one with `folio password-hash`"
        )
    try:
        params = dict(item.partition("=")[::2] for item in parts[1].split(","))
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
    except (ValueError, KeyError):
        raise ValueError(
            f"{_SETTING} is malformed: its parameters {parts[1]!r} are not 'n=N,r=R,p=P'; "
            "make a new hash with `folio password-hash`"
        ) from None
    try:
        salt = base64.b64decode(parts[2], validate=True)
        key = base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(
            f"{_SETTING} is malformed: its salt or hash is not base64 (copied incompletely?); "
            "make a new hash with `folio password-hash`"
        ) from None
    valid_n = 2 <= n <= _MAX_N and n & (n - 1) == 0  # scrypt needs a power of two
    if not (valid_n and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P and salt and len(key) >= 16):
        raise ValueError(
            f"{_SETTING} has unusable parameters (n={n}, r={r}, p={p}, "
            f"{len(salt)}-byte salt, {len(key)}-byte hash); make a new one with "
            "`folio password-hash`"
        )
    return PasswordHash(n, r, p, salt, key)


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash, compared in constant time.

    Raises ValueError (naming the setting) when `stored` is malformed, so a broken setting is
    reported instead of silently locking everyone out.
    """
    parsed = parse_password_hash(stored)
    candidate = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.key))
    return hmac.compare_digest(candidate, parsed.key)


def api_key_matches(given: str | None, expected: str) -> bool:
    """Whether a client's key equals the configured one, in constant time (no timing leak).

    An empty configured key never matches: "no key" must not mean "the empty key".
    """
    if given is None or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class OpenBindError(ValueError):
    """Listening on a network address with no access control; the message says how to fix it."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost. Any other name or address may be reachable from outside."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name (or "" = every interface): assume it is reachable
        return False


def refuse_open_bind(
    host: str, *, secured: bool, insecure: bool, how: str, missing: str = "an API key or password"
) -> None:
    """Raise OpenBindError when `host` is not loopback and neither `secured` nor `insecure`.

    `how` says how to secure it (e.g. "set FOLIO_API_KEY (or api_key in the config file)");
    `missing` names what is not set, for the message.
    """
    if secured or insecure or is_loopback(host):
        return
    how = how[:1].upper() + how[1:]
    raise OpenBindError(
        f"refusing to listen on {host or 'every interface'} without {missing}: anyone on the "
        f"network could read and delete your documents. {how}, or pass --insecure"
    )
