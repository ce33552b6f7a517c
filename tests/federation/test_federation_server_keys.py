"""Key documents: ours as published, and the checks on documents other servers send."""

from __future__ import annotations

import copy

import pytest

from federation.server_keys import (
    MAX_KEY_VALIDITY_MS,
    KeyDocumentError,
    check_notary_signature,
    own_key_document,
    parse_key_document,
)
from homeserver.events.signing import (
    encode_verify_key_base64,
    generate_signing_key,
    get_verify_key,
    sign_json_object,
)

NOW = 1_700_000_000_000


def test_our_document_lists_current_and_old_keys_and_verifies() -> None:
    key = generate_signing_key("new")
    old_public = encode_verify_key_base64(generate_signing_key("old"))
    document = own_key_document("a.example", key, {"ed25519:old": (old_public, NOW - 5)},
                                NOW + 3600_000)
    keys = {k.key_id: k for k in parse_key_document(document, "a.example", NOW)}
    assert keys["ed25519:new"].is_current and keys["ed25519:new"].valid_until_ts == NOW + 3600_000
    assert not keys["ed25519:old"].is_current and keys["ed25519:old"].valid_until_ts == NOW - 5


def test_validity_is_capped_at_seven_days() -> None:
    document = own_key_document("a.example", generate_signing_key("k"), {}, NOW + 10**12)
    [key] = parse_key_document(document, "a.example", NOW)
    assert key.valid_until_ts == NOW + MAX_KEY_VALIDITY_MS


def test_documents_that_do_not_prove_themselves_are_refused() -> None:
    key = generate_signing_key("k")
    document = own_key_document("a.example", key, {}, NOW + 1000)
    with pytest.raises(KeyDocumentError):
        parse_key_document(document, "b.example", NOW)  # for another server
    tampered = copy.deepcopy(document)
    tampered["valid_until_ts"] += 1
    with pytest.raises(KeyDocumentError):
        parse_key_document(tampered, "a.example", NOW)
    # A key added by someone else (a notary) without the server's own signature.
    added = copy.deepcopy(document)
    intruder = generate_signing_key("x")
    added["verify_keys"]["ed25519:x"] = {"key": encode_verify_key_base64(intruder)}
    with pytest.raises(KeyDocumentError):
        parse_key_document(added, "a.example", NOW)


def test_notary_signature_must_come_from_a_trusted_notary_key() -> None:
    document = own_key_document("a.example", generate_signing_key("k"), {}, NOW + 1000)
    notary = generate_signing_key("n")
    trusted = {"ed25519:n": get_verify_key(notary)}
    with pytest.raises(KeyDocumentError):
        check_notary_signature(document, "notary.example", trusted)
    sign_json_object(document, "notary.example", notary)
    check_notary_signature(document, "notary.example", trusted)
