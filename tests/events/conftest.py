"""Fixtures shared by the event format tests: the spec's test-vector signing key."""

from __future__ import annotations

import pytest
from signedjson.key import decode_signing_key_base64
from signedjson.types import SigningKey

# Appendices, "Cryptographic Test Vectors": seed, server name and key ID of every vector.
SPEC_SEED_BASE64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"


@pytest.fixture
def spec_key() -> SigningKey:
    return decode_signing_key_base64("ed25519", "1", SPEC_SEED_BASE64)
