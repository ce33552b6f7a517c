"""User-interactive authentication ("User-Interactive Authentication API" in the spec).

Sans-HTTP: `InteractiveAuth.check` takes the request body's `auth` dict, the flows the endpoint
offers, and the URI and method of the request; it either returns (every stage of some flow is
done) or raises InteractiveAuthRequired, which the HTTP layer renders as 401 with
{flows, params, session[, completed][, errcode, error]}.

Sessions live in the ui_auth_sessions table, so a flow survives a restart between stages. A
session is bound to the URI, method and user it was created for: completing a password stage
for "delete device A" must not authorise "deactivate account". A session ends when its flow
completes (it has authorised the one operation it was made for) or after SESSION_LIFETIME_MS.

A stage checker may return what the stage established (m.login.email.identity: which address
was validated); the results of a session's stages come back in UiaResult.results, for the
request that completes the flow, whichever earlier request completed the stage.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homeserver.clock import Clock
from homeserver.errors import Codes, InteractiveAuthRequired, MatrixError, bad_json, forbidden
from homeserver.identifiers import random_string
from storage.accounts import AccountStore

logger = logging.getLogger(__name__)

SESSION_LIFETIME_MS = 15 * 60 * 1000
# Expired sessions are swept at most this often, when a new session is created.
_SWEEP_INTERVAL_MS = 5 * 60 * 1000

Flows = Sequence[Sequence[str]]
# Checks one stage's auth dict for the requesting user (None when nobody is logged in, as
# during registration); raises MatrixError when the attempt failed. Returns None, or a JSON
# object of what the stage established (kept with the session).
StageChecker = Callable[[dict[str, Any], "str | None"], Awaitable[dict[str, Any] | None]]


async def check_dummy(auth: dict[str, Any], user_id: str | None) -> None:
    """m.login.dummy always succeeds: it exists so that a flow can require no real stage."""


@dataclass(frozen=True)
class UiaResult:
    session_id: str | None
    completed: tuple[str, ...]
    # stage -> what its checker returned, for the stages that returned something.
    results: Mapping[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Session:
    # None until the session has to be remembered (a flow that completes in one request
    # never touches the database).
    session_id: str | None
    completed: list[str]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


class InteractiveAuth:
    def __init__(
        self, store: AccountStore, clock: Clock, checkers: Mapping[str, StageChecker]
    ) -> None:
        self.store = store
        self.clock = clock
        self.checkers = dict(checkers)
        self._last_sweep_ms = 0

    async def check(
        self,
        auth: Any,
        flows: Flows,
        uri: str,
        method: str,
        user_id: str | None,
        params: Mapping[str, Any] | None = None,
        checkers: Mapping[str, StageChecker] | None = None,
    ) -> UiaResult:
        """Returns once a whole flow is complete; raises InteractiveAuthRequired until then.

        `checkers` adds stages that only this endpoint offers, or that need to know what the
        endpoint is for (the email stage accepts only addresses validated for its purpose).
        """
        challenge = _Challenge(flows, dict(params or {}), {**self.checkers, **(checkers or {})})
        if auth is not None and not isinstance(auth, dict):
            raise bad_json("auth must be an object")
        session = await self._load_session(auth or {}, uri, method, user_id)
        stage = (auth or {}).get("type")
        if stage is not None:
            await self._attempt(stage, auth, challenge, session, uri, method, user_id)
        if _flow_complete(flows, session.completed):
            if session.session_id is not None:
                await self.store.delete_uia_session(session.session_id)
            return UiaResult(session.session_id, tuple(session.completed), session.results)
        # The spec: a request without auth data never succeeds, even when only dummy is needed.
        await self._remember(session, uri, method, user_id)
        raise InteractiveAuthRequired(challenge.body(session))

    async def _load_session(
        self, auth: dict[str, Any], uri: str, method: str, user_id: str | None
    ) -> _Session:
        session_id = auth.get("session")
        if session_id is None:
            # Some clients (matrix-nio) send a dummy stage on their very first request.
            return _Session(None, [])
        if not isinstance(session_id, str):
            raise bad_json("auth.session must be a string")
        stored = await self.store.get_uia_session(session_id)
        now = self.clock.time_msec()
        if stored is None or now - stored[4] > SESSION_LIFETIME_MS:
            raise MatrixError(400, Codes.UNKNOWN, "Unknown or expired session ID")
        stored_user, stored_uri, stored_method, completed, _, results = stored
        if (stored_uri, stored_method) != (uri, method):
            raise forbidden(
                "Requested operation has changed during the user-interactive auth session"
            )
        if stored_user != user_id:
            raise forbidden("This user-interactive auth session belongs to another user")
        return _Session(session_id, [str(stage) for stage in completed], dict(results))

    async def _attempt(
        self,
        stage: Any,
        auth: dict[str, Any],
        challenge: _Challenge,
        session: _Session,
        uri: str,
        method: str,
        user_id: str | None,
    ) -> None:
        if not isinstance(stage, str):
            raise bad_json("auth.type must be a string")
        if stage in session.completed:
            # Completed stages cannot be retried; answer as for a request with only the session.
            return
        outcome = await self._run_stage(stage, auth, challenge, session.completed, user_id)
        if isinstance(outcome, MatrixError):
            await self._remember(session, uri, method, user_id)
            raise InteractiveAuthRequired(challenge.body(session, outcome))
        session.completed.append(stage)
        if outcome is not None:
            session.results[stage] = outcome
        if session.session_id is not None and not _flow_complete(
            challenge.flows, session.completed
        ):
            await self.store.set_uia_completed(
                session.session_id, session.completed, session.results
            )

    async def _run_stage(
        self,
        stage: str,
        auth: dict[str, Any],
        challenge: _Challenge,
        completed: list[str],
        user_id: str | None,
    ) -> MatrixError | dict[str, Any] | None:
        """The error to show with the flows when the stage failed, else its result."""
        flows = challenge.flows
        checker = challenge.checkers.get(stage)
        if checker is None or not any(stage in flow for flow in flows):
            return MatrixError(401, Codes.UNRECOGNIZED, f"Auth type {stage} is not offered here")
        if not _is_next_stage(flows, completed, stage):
            return forbidden(f"Auth stage {stage} is not the next stage of any flow")
        try:
            return await checker(auth, user_id)
        except MatrixError as error:
            if error.http_status == 429:
                raise  # rate limiting is not a failed attempt the client should retry now
            return error

    async def _remember(
        self, session: _Session, uri: str, method: str, user_id: str | None
    ) -> None:
        if session.session_id is not None:
            return
        session.session_id = random_string(24)
        now = self.clock.time_msec()
        await self.store.create_uia_session(session.session_id, user_id, uri, method, now)
        if session.completed:
            await self.store.set_uia_completed(
                session.session_id, session.completed, session.results
            )
        await self._maybe_sweep(now)

    async def _maybe_sweep(self, now: int) -> None:
        if now - self._last_sweep_ms < _SWEEP_INTERVAL_MS:
            return
        self._last_sweep_ms = now
        try:
            await self.store.delete_expired_uia_sessions(now - SESSION_LIFETIME_MS)
        except Exception:
            # Housekeeping: the next sweep will try again.
            logger.warning("Could not delete expired UIA sessions", exc_info=True)


@dataclass(frozen=True)
class _Challenge:
    flows: Flows
    params: dict[str, Any]
    checkers: Mapping[str, StageChecker]

    def body(self, session: _Session, error: MatrixError | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "flows": [{"stages": list(flow)} for flow in self.flows],
            "params": self.params,
            "session": session.session_id,
        }
        if session.completed:
            body["completed"] = list(session.completed)
        if error is not None:
            body["errcode"] = error.errcode
            body["error"] = error.message
        return body


def _flow_complete(flows: Flows, completed: Sequence[str]) -> bool:
    return any(flow and all(stage in completed for stage in flow) for flow in flows)


def _is_next_stage(flows: Flows, completed: Sequence[str], stage: str) -> bool:
    """Stages must be done in the order of some flow that starts with what is completed."""
    done = len(completed)
    return any(
        list(flow[:done]) == list(completed) and len(flow) > done and flow[done] == stage
        for flow in flows
    )
