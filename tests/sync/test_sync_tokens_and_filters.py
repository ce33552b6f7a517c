"""Sync tokens and filters: plain functions, no server."""

import pytest

from homeserver.errors import MatrixError
from homeserver.events.event import Event
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.sync.filtering import apply_event_fields, parse_event_filter, parse_sync_filter
from homeserver.sync.tokens import StreamToken, decode_pagination_token, encode_pagination_token


def test_token_round_trip() -> None:
    token = StreamToken(events=42, account_data=7)
    assert StreamToken.decode(token.encode()) == token


def test_older_token_without_newer_streams_still_parses() -> None:
    assert StreamToken.decode("s42") == StreamToken(events=42, account_data=0)


@pytest.mark.parametrize("bad", ["", "x1_2", "s1_a", "s-1_0", "s1_2_3_4_5_6_7_8_9", "s" + "9" * 30])
def test_bad_tokens_are_refused(bad: str) -> None:
    with pytest.raises(MatrixError) as caught:
        StreamToken.decode(bad)
    assert caught.value.http_status == 400


def test_future_token_is_capped_at_now() -> None:
    now = StreamToken(events=10, account_data=5)
    assert StreamToken(events=99, account_data=1).capped_at(now) == StreamToken(10, 1)


def test_pagination_tokens_accept_sync_tokens() -> None:
    assert decode_pagination_token(encode_pagination_token(-5)) == -5
    assert decode_pagination_token(StreamToken(events=8).encode()) == 8


def _event(event_type: str, sender: str = "@a:x", content: dict | None = None) -> Event:
    pdu = {
        "type": event_type,
        "sender": sender,
        "room_id": "!r:x",
        "content": content or {},
        "event_id": "$e:x",
        "depth": 1,
    }
    return Event(pdu, KNOWN_ROOM_VERSIONS["1"])


def test_filter_types_wildcards_and_exclusions() -> None:
    event_filter = parse_event_filter(
        {"types": ["m.room.*"], "not_types": ["m.room.member"], "not_senders": ["@spam:x"]}, "f"
    )
    assert event_filter.allows(_event("m.room.message"))
    assert not event_filter.allows(_event("m.room.member"))
    assert not event_filter.allows(_event("m.reaction"))
    assert not event_filter.allows(_event("m.room.message", sender="@spam:x"))


def test_filter_pushdown_leaves_wildcards_to_python() -> None:
    assert parse_event_filter({"types": ["m.room.*"]}, "f").sql_pushdown() is None
    pushed = parse_event_filter({"types": ["m.room.message"]}, "f").sql_pushdown()
    assert pushed is not None and pushed.types == ("m.room.message",)


def test_contains_url() -> None:
    only_urls = parse_event_filter({"contains_url": True}, "f")
    assert only_urls.allows(_event("m.room.message", content={"url": "mxc://x/y"}))
    assert not only_urls.allows(_event("m.room.message", content={"body": "hi"}))


@pytest.mark.parametrize(
    "bad",
    [
        {"room": {"timeline": {"limit": -1}}},
        {"room": {"timeline": {"types": "m.room.message"}}},
        {"room": {"include_leave": "yes"}},
        {"event_format": "xml"},
        {"room": []},
    ],
)
def test_malformed_filters_are_bad_json(bad: dict) -> None:
    with pytest.raises(MatrixError) as caught:
        parse_sync_filter(bad)
    assert caught.value.errcode == "M_BAD_JSON"


def test_timeline_limit_default_and_cap() -> None:
    assert parse_sync_filter({}).timeline_limit == 10
    assert parse_sync_filter({"room": {"timeline": {"limit": 10**9}}}).timeline_limit == 1000


def test_event_fields() -> None:
    event = {"type": "m.room.message", "content": {"body": "hi", "msgtype": "m.text"}, "a.b": 1}
    assert apply_event_fields(event, ("type", "content.body", "a\\.b")) == {
        "type": "m.room.message",
        "content": {"body": "hi"},
        "a.b": 1,
    }
