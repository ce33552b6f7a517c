"""The keyring: other servers' verify keys, fetched, checked, cached, and used to verify.

Keys come from the server itself (`/_matrix/key/v2/server`) or, when `trusted_key_servers` is
set, from those notaries first. Every key we ever accepted is kept (in memory and in the
database), so events signed with a key that has since expired still verify.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from twisted.internet import defer

from federation.client import FederationClient, FederationError
from federation.server_keys import (
    KeyDocumentError,
    ServerKey,
    check_notary_signature,
    parse_key_document,
)
from homeserver.config import TrustedKeyServer
from homeserver.events.signing import (
    SignatureError,
    SigningKey,
    VerifyKey,
    decode_verify_key_base64,
    encode_verify_key_base64,
    get_verify_key,
    key_id,
    verify_json_object,
)
from homeserver.identifiers import is_valid_server_name
from storage.server_keys import ServerKeyStore, StoredKey

logger = logging.getLogger(__name__)

# After a failed fetch, do not ask the same server again sooner than this.
FETCH_RETRY_INTERVAL_MS = 60 * 1000


class Keyring:
    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        old_keys: dict[str, tuple[str, int]],
        store: ServerKeyStore,
        client: FederationClient,
        trusted_key_servers: Collection[TrustedKeyServer],
        now_ms: Callable[[], int],
    ) -> None:
        self.server_name = server_name
        self._store = store
        self._client = client
        self._notaries = list(trusted_key_servers)
        self._now_ms = now_ms
        # server name -> key ID -> (key, valid until). Our own keys never need fetching.
        self._keys: dict[str, dict[str, tuple[VerifyKey, int]]] = {
            server_name: {key_id(signing_key): (get_verify_key(signing_key), 2**62)}
        }
        for kid, (public, expired_ts) in old_keys.items():
            self._keys[server_name][kid] = (decode_verify_key_base64(kid, public), expired_ts)
        self._loaded: set[str] = {server_name}
        self._in_flight: dict[str, defer.Deferred[None]] = {}
        self._last_failure_ms: dict[str, int] = {}

    # -- verifying ------------------------------------------------------------------------------

    async def verify_json(self, server_name: str, obj: dict[str, Any], at_ts: int) -> None:
        """Raises SignatureError unless `server_name` signed obj with a key valid at `at_ts`."""
        signatures = obj.get("signatures", {}).get(server_name)
        if not isinstance(signatures, dict) or not signatures:
            raise SignatureError(f"not signed by {server_name}")
        key_ids = [k for k in signatures if k.startswith("ed25519:")]
        keys = await self.get_keys(server_name, key_ids, at_ts)
        if not keys:
            raise SignatureError(f"no key of {server_name} valid at {at_ts} among {key_ids}")
        for verify_key in keys.values():
            verify_json_object(obj, server_name, verify_key)

    async def get_keys(
        self, server_name: str, key_ids: Collection[str], valid_at_ts: int
    ) -> dict[str, VerifyKey]:
        """Those of `key_ids` known (fetching if needed) and valid at `valid_at_ts`."""
        if not is_valid_server_name(server_name):
            return {}
        found = await self._known(server_name, key_ids, valid_at_ts)
        if len(found) < len(key_ids) and server_name != self.server_name:
            await self._fetch(server_name)
            found = await self._known(server_name, key_ids, valid_at_ts)
        return found

    async def _known(
        self, server_name: str, key_ids: Collection[str], valid_at_ts: int
    ) -> dict[str, VerifyKey]:
        if server_name not in self._loaded:
            await self._load(server_name)
        known = self._keys.get(server_name, {})
        return {
            kid: known[kid][0]
            for kid in key_ids
            if kid in known and known[kid][1] >= valid_at_ts
        }

    async def _load(self, server_name: str) -> None:
        for stored in await self._store.get_keys(server_name):
            verify_key = decode_verify_key_base64(stored.key_id, stored.verify_key_base64)
            self._remember(ServerKey(server_name, stored.key_id, verify_key,
                                     stored.valid_until_ts, is_current=False))
        self._loaded.add(server_name)

    def _remember(self, key: ServerKey) -> None:
        keys = self._keys.setdefault(key.server_name, {})
        previous = keys.get(key.key_id)
        valid_until = max(key.valid_until_ts, previous[1] if previous else 0)
        keys[key.key_id] = (key.verify_key, valid_until)

    # -- fetching -------------------------------------------------------------------------------

    async def _fetch(self, server_name: str) -> None:
        """Fetches the server's keys once, however many callers are waiting for them."""
        last_failure = self._last_failure_ms.get(server_name)
        if last_failure is not None and self._now_ms() - last_failure < FETCH_RETRY_INTERVAL_MS:
            return
        waiting = self._in_flight.get(server_name)
        if waiting is None:
            waiting = defer.ensureDeferred(self._fetch_now(server_name))
            self._in_flight[server_name] = waiting
            waiting.addBoth(lambda result: (self._in_flight.pop(server_name, None), result)[1])
        await _shielded(waiting)

    async def _fetch_now(self, server_name: str) -> None:
        for notary in self._notaries:
            if notary.server_name == server_name:
                continue
            try:
                documents = await self._query_notary(notary, server_name)
            except (FederationError, KeyDocumentError, SignatureError) as e:
                logger.info("Notary %s had no keys of %s: %s", notary.server_name, server_name, e)
                continue
            if documents:
                await self.accept_documents(server_name, documents)
                return
        try:
            document = await self._client.get_json(
                server_name, "/_matrix/key/v2/server", signed=False, timeout=30
            )
            await self.accept_documents(server_name, [document])
        except (FederationError, KeyDocumentError) as e:
            logger.info("Could not fetch the keys of %s: %s", server_name, e)
            self._last_failure_ms[server_name] = self._now_ms()

    async def _query_notary(
        self, notary: TrustedKeyServer, server_name: str
    ) -> list[dict[str, Any]]:
        answer = await self._client.post_json(
            notary.server_name,
            "/_matrix/key/v2/query",
            {"server_keys": {server_name: {}}},
            timeout=30,
        )
        documents = answer.get("server_keys") if isinstance(answer, dict) else None
        if not isinstance(documents, list):
            raise KeyDocumentError("notary answer has no server_keys list")
        notary_keys = await self._notary_keys(notary)
        mine = [d for d in documents if isinstance(d, dict) and d.get("server_name") == server_name]
        for document in mine:
            if not notary.accept_keys_insecurely or notary_keys:
                check_notary_signature(document, notary.server_name, notary_keys)
        return mine

    async def _notary_keys(self, notary: TrustedKeyServer) -> dict[str, VerifyKey]:
        if notary.verify_keys:
            return {
                kid: decode_verify_key_base64(kid, public)
                for kid, public in notary.verify_keys.items()
            }
        # No configured keys: the notary's own, fetched directly (trust on first use).
        known = await self._known(notary.server_name, [], 0)
        if not known:
            await self._fetch(notary.server_name)
        return {kid: vk for kid, (vk, _) in self._keys.get(notary.server_name, {}).items()}

    async def accept_documents(self, server_name: str, documents: list[dict[str, Any]]) -> None:
        """Checks self-signed key documents of `server_name`, then keeps their keys."""
        now = self._now_ms()
        for document in documents:
            keys = parse_key_document(document, server_name, now)
            for key in keys:
                self._remember(key)
            stored = [
                StoredKey(server_name, k.key_id, encode_verify_key_base64(k.verify_key),
                          k.valid_until_ts)
                for k in keys
            ]
            valid_until = max(k.valid_until_ts for k in keys if k.is_current)
            await self._store.store_keys(server_name, stored, document, valid_until, now)
        self._last_failure_ms.pop(server_name, None)

    # -- serving as a notary ----------------------------------------------------------------------

    async def documents_for(self, server_name: str, minimum_valid_until_ts: int) -> list[dict]:
        """The newest self-signed document of a server, fetched again if it expires too soon."""
        document = await self._store.get_document(server_name)
        if document is None or document.get("valid_until_ts", 0) < minimum_valid_until_ts:
            self._last_failure_ms.pop(server_name, None)
            await self._fetch(server_name)
            document = await self._store.get_document(server_name) or document
        return [document] if document is not None else []


async def _shielded(deferred: defer.Deferred[Any]) -> None:
    # One caller's cancellation (its request timed out) must not cancel the shared fetch.
    shield: defer.Deferred[Any] = defer.Deferred()
    deferred.addBoth(lambda r: (shield.callback(None) if not shield.called else None, r)[1])
    await shield
