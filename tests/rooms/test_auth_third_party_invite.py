"""Third-party invites: the m.room.third_party_invite event and the invite that redeems it."""

from __future__ import annotations

import copy

import pytest
from canonicaljson import encode_canonical_json
from nacl.signing import SigningKey
from unpaddedbase64 import encode_base64

from homeserver.errors import AuthError
from tests.rooms.event_factory import ALICE, BOB, CAROL, Room, standard_room

VERSIONS = ["1", "6", "10", "11", "12"]
TOKEN = "sometoken"


def signed_block(key: SigningKey, mxid: str = BOB, token: str = TOKEN) -> dict:
    signed = {"mxid": mxid, "token": token}
    signature = key.sign(encode_canonical_json(signed)).signature
    signed["signatures"] = {"id.test": {"ed25519:0": encode_base64(signature)}}
    return signed


def room_with_invite(version: str, key: SigningKey, *, as_list: bool = False) -> Room:
    room = standard_room(version, "invite", users={CAROL: 100} if version != "12" else None)
    public_key = encode_base64(key.verify_key.encode())
    content = {"display_name": "b...@example.org", "key_validity_url": "https://id.test/v"}
    if as_list:
        content["public_key"] = "not-this-one"
        content["public_keys"] = [{"public_key": public_key}]
    else:
        content["public_key"] = public_key
    room.send("m.room.third_party_invite", ALICE, content, state_key=TOKEN)
    return room


def invite(room: Room, signed: dict | None, sender: str = ALICE, target: str = BOB):
    third_party = {"display_name": "b...@example.org"}
    if signed is not None:
        third_party["signed"] = signed
    return room.member_event(target, "invite", sender=sender, third_party_invite=third_party)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.mark.parametrize("version", VERSIONS)
def test_third_party_invite_event_needs_invite_level(version):
    room = standard_room(version, "invite", users={BOB: 5}, invite=10)
    room.member(BOB, "invite", sender=ALICE)
    room.member(BOB, "join")
    event = room.build("m.room.third_party_invite", BOB, {"public_key": "k"}, state_key="t")
    with pytest.raises(AuthError, match="power level to invite"):
        room.check(event)
    room.send("m.room.third_party_invite", ALICE, {"public_key": "k"}, state_key="t")


@pytest.mark.parametrize("version", VERSIONS)
def test_third_party_invite_event_by_non_member_refused(version):
    room = standard_room(version, "public")
    event = room.build("m.room.third_party_invite", BOB, {"public_key": "k"}, state_key="t")
    with pytest.raises(AuthError, match="not joined"):
        room.check(event)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("as_list", [False, True])
def test_redeeming_invite_allowed(version, key, as_list):
    room = room_with_invite(version, key, as_list=as_list)
    room.check(invite(room, signed_block(key)))


@pytest.mark.parametrize("version", VERSIONS)
def test_redeeming_with_url_safe_key_allowed(version, key):
    room = standard_room(version, "invite")
    public_key = encode_base64(key.verify_key.encode(), urlsafe=True)
    room.send("m.room.third_party_invite", ALICE, {"public_key": public_key}, state_key=TOKEN)
    room.check(invite(room, signed_block(key)))


@pytest.mark.parametrize("version", VERSIONS)
def test_wrong_signature_refused(version, key):
    room = room_with_invite(version, key)
    with pytest.raises(AuthError, match="not signed"):
        room.check(invite(room, signed_block(SigningKey.generate())))
    tampered = signed_block(key)
    tampered["extra"] = "field"
    with pytest.raises(AuthError, match="not signed"):
        room.check(invite(room, tampered))


@pytest.mark.parametrize("version", VERSIONS)
def test_missing_signed_refused(version, key):
    room = room_with_invite(version, key)
    with pytest.raises(AuthError, match="no signed"):
        room.check(invite(room, None))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("field", ["mxid", "token"])
def test_missing_mxid_or_token_refused(version, key, field):
    room = room_with_invite(version, key)
    signed = signed_block(key)
    del signed[field]
    with pytest.raises(AuthError, match="mxid and token"):
        room.check(invite(room, signed))


@pytest.mark.parametrize("version", VERSIONS)
def test_mxid_must_match_target(version, key):
    room = room_with_invite(version, key)
    with pytest.raises(AuthError, match="mxid"):
        room.check(invite(room, signed_block(key, mxid=CAROL)))


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_token_refused(version, key):
    room = room_with_invite(version, key)
    with pytest.raises(AuthError, match="no m.room.third_party_invite"):
        room.check(invite(room, signed_block(key, token="other")))


@pytest.mark.parametrize("version", ["1", "6", "10", "11"])
def test_sender_must_match_third_party_invite_sender(version, key):
    room = room_with_invite(version, key)
    room.member(CAROL, "invite", sender=ALICE)
    room.member(CAROL, "join")
    with pytest.raises(AuthError, match="only the sender"):
        room.check(invite(room, signed_block(key), sender=CAROL))


@pytest.mark.parametrize("version", VERSIONS)
def test_banned_target_refused(version, key):
    room = room_with_invite(version, key)
    room.member(BOB, "ban", sender=ALICE)
    with pytest.raises(AuthError, match="banned"):
        room.check(invite(room, signed_block(key)))


def test_signature_check_does_not_mutate_content(key):
    room = room_with_invite("11", key)
    signed = signed_block(key)
    event = invite(room, signed)
    before = copy.deepcopy(event.content)
    room.check(event)
    assert event.content == before
