"""Push notifications (client-server spec, "Push Notifications"): /pushrules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from client_api.http import ApiRequest, Router

if TYPE_CHECKING:
    from homeserver.server import HomeServer

RULE = "/pushrules/global/{kind}/{ruleId}"


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
