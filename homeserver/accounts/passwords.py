"""Password hashing with bcrypt, always in a worker thread.

bcrypt is deliberately slow (tens to hundreds of milliseconds at the usual cost factors); run
on the reactor thread it would stall every other request, so both hashing and checking go
through `deferToThread`.

The hashes are compatible with Synapse's: the password is NFKC-normalised (so the same
password typed on different keyboards or platforms matches) and encoded as UTF-8. bcrypt only
ever used the first 72 bytes; bcrypt 5 refuses longer input instead of ignoring the rest, so we
cut it to 72 bytes ourselves, which keeps hashes made by Synapse (and older bcrypt) valid.
"""

from __future__ import annotations

import unicodedata

import bcrypt
from twisted.internet import threads

# bcrypt's input limit; bytes beyond it never influenced a hash.
_BCRYPT_MAX_BYTES = 72
# Longer passwords are refused at the API (as Synapse does): hashing a megabyte is pointless.
MAX_PASSWORD_LENGTH = 512


def _prepare(password: str) -> bytes:
    return unicodedata.normalize("NFKC", password).encode("utf-8")[:_BCRYPT_MAX_BYTES]


def _hash_blocking(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prepare(password), bcrypt.gensalt(rounds)).decode("ascii")


def _check_blocking(password: str, stored_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prepare(password), stored_hash.encode("ascii"))
    except ValueError:
        # A corrupt or foreign hash in the database: no password matches it.
        return False


async def hash_password(password: str, rounds: int) -> str:
    return await threads.deferToThread(_hash_blocking, password, rounds)


async def check_password(password: str, stored_hash: str | None) -> bool:
    """Whether `password` matches; False when the account has no password at all."""
    if not stored_hash:
        return False
    return await threads.deferToThread(_check_blocking, password, stored_hash)
