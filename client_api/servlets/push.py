"""Push notifications (client-server spec, "Push Notifications"): /pushrules,
/notifications, /pushers, and MSC4174's /pushers/ack for Web Push pushers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router
from homeserver.errors import Codes, MatrixError
from push.pushers import pusher_json

if TYPE_CHECKING:
    from homeserver.server import HomeServer

RULE = "/pushrules/global/{kind}/{ruleId}"
DEFAULT_NOTIFICATIONS_LIMIT = 20


def _user(request: ApiRequest) -> str:
    assert request.requester is not None
    return request.requester.user_id


def register_routes(router: Router, hs: HomeServer) -> None:
    rules = hs.push_rules

    def rule_key(request: ApiRequest) -> tuple[str, str, str]:
        return _user(request), request.path_params["kind"], request.path_params["ruleId"]

    async def get_all(request: ApiRequest) -> tuple[int, Any]:
        return 200, await rules.ruleset_json(_user(request))

    async def get_global(request: ApiRequest) -> tuple[int, Any]:
        return 200, (await rules.ruleset_json(_user(request)))["global"]

    async def get_rule(request: ApiRequest) -> tuple[int, Any]:
        return 200, (await rules.get_rule(*rule_key(request))).to_json()

    async def put_rule(request: ApiRequest) -> tuple[int, Any]:
        await rules.put_rule(
            *rule_key(request), request.json(),
            before=request.query_str("before"), after=request.query_str("after"),
        )
        return 200, {}

    async def delete_rule(request: ApiRequest) -> tuple[int, Any]:
        await rules.delete_rule(*rule_key(request))
        return 200, {}

    async def get_enabled(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"enabled": (await rules.get_rule(*rule_key(request))).enabled}

    async def put_enabled(request: ApiRequest) -> tuple[int, Any]:
        await rules.set_enabled(*rule_key(request), request.json().get("enabled"))
        return 200, {}

    async def get_actions(request: ApiRequest) -> tuple[int, Any]:
        return 200, {"actions": list((await rules.get_rule(*rule_key(request))).actions)}

    async def put_actions(request: ApiRequest) -> tuple[int, Any]:
        await rules.set_actions(*rule_key(request), request.json().get("actions"))
        return 200, {}

    router.add_client("GET", "/pushrules/", get_all)
    router.add_client("GET", "/pushrules/global/", get_global)
    router.add_client("GET", RULE, get_rule)
    router.add_client("PUT", RULE, put_rule)
    router.add_client("DELETE", RULE, delete_rule)
    router.add_client("GET", RULE + "/enabled", get_enabled)
    router.add_client("PUT", RULE + "/enabled", put_enabled)
    router.add_client("GET", RULE + "/actions", get_actions)
    router.add_client("PUT", RULE + "/actions", put_actions)

    async def notifications(request: ApiRequest) -> tuple[int, Any]:
        user_id = _user(request)
        token = request.query_str("from")
        if token is not None and not token.lstrip("-").isdigit():
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown 'from' token")
        limit = request.query_int("limit", DEFAULT_NOTIFICATIONS_LIMIT, minimum=0)
        limit = min(limit or 0, hs.config.pagination_max_limit)
        only = request.query_str("only")
        found = await hs.storage.push_actions.get_notifications(
            user_id, int(token) if token is not None else None, limit, only == "highlight"
        )
        events = await hs.storage.events.get_events([n.event_id for n in found])
        rendered = await hs.sync.renderer.render(
            [events[n.event_id] for n in found if n.event_id in events], user_id=user_id
        )
        by_id = {event["event_id"]: event for event in rendered}
        answer: dict[str, Any] = {
            "notifications": [
                {"actions": n.actions, "event": by_id[n.event_id], "read": n.read,
                 "room_id": n.room_id, "ts": n.ts}
                for n in found if n.event_id in by_id
            ]
        }
        if found and len(found) == limit:
            answer["next_token"] = str(found[-1].stream_ordering)
        return 200, answer

    router.add_client("GET", "/notifications", notifications)

    async def get_pushers(request: ApiRequest) -> tuple[int, Any]:
        pushers = await hs.storage.pushers.get_for_user(_user(request))
        return 200, {"pushers": [pusher_json(p) for p in pushers]}

    async def set_pusher(request: ApiRequest) -> tuple[int, Any]:
        assert request.requester is not None
        status = await hs.pushers.set_pusher(
            request.requester.user_id, request.requester.device_id, request.json()
        )
        return status, {}

    async def ack_pusher(request: ApiRequest) -> tuple[int, Any]:
        await hs.pushers.ack(_user(request), request.json())
        return 200, {}

    router.add_client("GET", "/pushers", get_pushers)
    router.add_client("POST", "/pushers/set", set_pusher)
    router.add_client("POST", "/pushers/ack", ack_pusher)
    router.add("POST", "/_matrix/client/unstable/org.matrix.msc4174/pushers/ack", ack_pusher)
