"""Personal data encrypted at rest: members' name, phone, e-mail and birthday, and redemptions' delivery
addresses (and the idempotency records' stored responses, which may repeat them) are stored as
`enc:<key id>:<base64 nonce + ciphertext + tag>` with AES-256-GCM, or SM4-GCM (the national-standard
cipher seed 002 asks for) — `cryptography` provides both. Phones are found through a keyed hash
(HMAC-SHA256), never by decrypting.

Keys: JIFEN_DATA_KEYS = "k2:sm4:<base64 16 bytes>,k1:aes:<base64 32 bytes>" — the first encrypts, every
listed key decrypts, so a new key can be put first and `jifen member rotate-keys` re-encrypts the rows; JIFEN_LOOKUP_KEY
(base64) keys the hash. Without them (the embedded default) a key file `data.key` is made on first use
beside the SQLite database (./var/data.key otherwise).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import String, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

from jifen.config import get_settings

PREFIX = "enc:"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Key:
    id: str
    cipher: str  # aes or sm4
    secret: bytes


@functools.lru_cache(maxsize=1)
def keyring() -> tuple[list[Key], bytes]:
    settings = get_settings()
    spec, lookup = settings.data_keys, settings.lookup_key
    if not spec:
        path = _key_file(settings)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"k1:aes:{base64.b64encode(os.urandom(32)).decode()}\n"
                            f"lookup:{base64.b64encode(os.urandom(32)).decode()}\n")
            path.chmod(0o600)
        lines = dict(line.split(":", 1) for line in path.read_text().split())
        spec, lookup = f"k1:{lines['k1']}", lines["lookup"]
    keys = []
    for part in spec.split(","):
        key_id, cipher, secret = part.strip().split(":", 2)
        raw = base64.b64decode(secret)
        if (cipher, len(raw)) not in (("aes", 32), ("sm4", 16)):
            raise ValueError(f"data key {key_id}: aes needs 32 bytes, sm4 16")
        keys.append(Key(key_id, cipher, raw))
    return keys, base64.b64decode(lookup or base64.b64encode(hashlib.sha256(keys[0].secret).digest()))


def _key_file(settings) -> Path:
    """The embedded default keeps its keys beside its SQLite file, so the two travel together."""
    if settings.data_key_file:
        return Path(settings.data_key_file)
    url = settings.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url.removeprefix("sqlite:///")).expanduser().parent / "data.key"
    return Path("./var/data.key")


def _cipher(key: Key, nonce: bytes, tag: bytes | None = None) -> Cipher:
    algorithm = algorithms.AES(key.secret) if key.cipher == "aes" else algorithms.SM4(key.secret)
    return Cipher(algorithm, modes.GCM(nonce, tag))


def encrypt(text: str) -> str:
    key = keyring()[0][0]
    nonce = os.urandom(12)
    enc = _cipher(key, nonce).encryptor()
    body = enc.update(text.encode()) + enc.finalize()
    return f"{PREFIX}{key.id}:{base64.b64encode(nonce + body + enc.tag).decode()}"


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        return stored  # written before encryption was on: `jifen member rotate-keys` encrypts it
    key_id, blob = stored[len(PREFIX):].split(":", 1)
    key = next((k for k in keyring()[0] if k.id == key_id), None)
    if key is None:
        raise ValueError(f"data key {key_id!r} is not configured")
    raw = base64.b64decode(blob)
    dec = _cipher(key, raw[:12], raw[-16:]).decryptor()
    return (dec.update(raw[12:-16]) + dec.finalize()).decode()


def lookup(value: str | None) -> str | None:
    """The keyed hash a phone is found by (digits only, so formatting does not matter)."""
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit()) or value
    return hmac.new(keyring()[1], digits.encode(), hashlib.sha256).hexdigest()


def mask(value: str | None) -> str | None:
    """138****1234; an e-mail a***@example.com; a name 王*; a date ****-**-**; a document {***; anything
    else its first character and at most eight stars."""
    if not value:
        return value
    if _ISO_DATE.match(value):
        return "****-**-**"
    if value[:1] in ("{", "["):  # a document (an address): nothing of it
        return value[:1] + "***"
    if "@" in value:
        user, _, domain = value.partition("@")
        return f"{user[:1]}***@{domain}"
    digits = value.replace(" ", "").replace("-", "")
    if sum(ch.isdigit() for ch in digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return value[:1] + "*" * max(1, min(8, len(value) - 1))


class Encrypted(TypeDecorator):
    """A string column stored encrypted (see the module's docstring)."""

    impl: TypeEngine[Any] | type[TypeEngine[Any]] = String(400)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


class EncryptedDate(Encrypted):
    """A date stored encrypted (its ISO text); rows written before (a plain YYYY-MM-DD) still read.
    (A kind of Encrypted, so whatever treats encrypted columns specially — the audit log masks them —
    treats it alike.)"""

    impl = String(400)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value.isoformat())

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, dt.date):  # a Date column not converted yet
            return value
        return dt.date.fromisoformat(decrypt(value)[:10])


class EncryptedJSON(Encrypted):
    """A JSON document stored encrypted; rows written before (plain JSON text) still read."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column not converted yet
            return value
        return json.loads(decrypt(value))


# The parts of an address that locate a delivery, in the order they are written (country and postcode
# are left out: one form has them, another does not). The recipient's name and phone do not locate it.
LOCATING = ("province", "state", "city", "district", "county", "town", "street", "address", "line1", "line",
            "line2", "detail")
RECIPIENT = frozenset({"name", "recipient", "contact", "phone", "mobile", "tel", "email", "country", "postcode",
                       "zip", "pooled", "erased"})


def normalise_address(address: dict | None) -> str | None:
    """The address as one comparable string: its locating parts in order, without whitespace or
    punctuation, case-folded, full-width forms folded (NFKC). None when it has no locating part."""
    if not address or address.get("pooled") is not None:
        return None
    keys = [k for k in LOCATING if k in address] or sorted(k for k in address if k.lower() not in RECIPIENT)
    text = unicodedata.normalize("NFKC", "".join(str(address[k] or "") for k in keys)).casefold()
    flat = "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch).startswith("P")))
    return flat or None


def address_lookup(address: dict | None) -> str | None:
    """The keyed hash risk control groups redemptions by (many orders to one address)."""
    flat = normalise_address(address)
    return None if flat is None else hmac.new(keyring()[1], b"address:" + flat.encode(), hashlib.sha256).hexdigest()
