"""Server keys, the keyring and signed requests between two real servers over HTTPS."""

from __future__ import annotations

import json
from urllib.parse import quote

import treq
from twisted.internet import defer

from federation.client import FederationError
from federation.server_keys import parse_key_document
from homeserver.events.signing import generate_signing_key
from tests.asyncutil import async_test
from tests.federation.federation_testing import FederatingServer, TwoServersCase


class TwoServers(TwoServersCase):
    async def fed_get(self, server: FederatingServer, path: str, **kwargs) -> tuple[int, object]:
        response = await treq.get(
            server.federation_url + path, persistent=False, agent=_insecure_agent(), **kwargs
        )
        return response.code, json.loads(await response.content())

    @async_test
    async def test_key_document_is_self_signed_and_current(self) -> None:
        code, document = await self.fed_get(self.a, "/_matrix/key/v2/server")
        self.assertEqual(code, 200)
        now = self.a.hs.clock.time_msec()
        keys = parse_key_document(document, self.a.server_name, now)  # checks the signatures
        self.assertEqual([k.key_id for k in keys], [f"ed25519:{self.a.hs.signing_key.version}"])
        # Published for a day (key_refresh_interval), read as valid for at most 7 days.
        self.assertGreater(document["valid_until_ts"], now + 23 * 3600 * 1000)

    @async_test
    async def test_signed_request_is_accepted_and_keys_are_cached(self) -> None:
        await self.b.client.put(
            "/_matrix/client/v3/profile/" + quote(self.bob) + "/displayname",
            {"displayname": "Bob"},
            self.bob_token,
        )
        profile = await self.a.hs.federation_client.get_json(
            self.b.server_name,
            "/_matrix/federation/v1/query/profile",
            {"user_id": self.bob, "field": "displayname"},
        )
        self.assertEqual(profile, {"displayname": "Bob"})
        # B fetched A's key to check the request, and kept it in its database.
        stored = await self.b.hs.storage.server_keys.get_keys(self.a.server_name)
        self.assertEqual(
            [k.key_id for k in stored], [f"ed25519:{self.a.hs.signing_key.version}"]
        )

    @async_test
    async def test_unsigned_and_badly_signed_requests_are_refused(self) -> None:
        path = "/_matrix/federation/v1/query/profile?user_id=" + quote(
            f"@nobody:{self.b.server_name}"
        )
        code, body = await self.fed_get(self.b, path)
        self.assertEqual((code, body["errcode"]), (401, "M_UNAUTHORIZED"))

        # Signed by a key that is not A's published key.
        impostor = self.a.hs.federation_client
        real_key = impostor.signing_key
        impostor.signing_key = generate_signing_key(real_key.version)
        try:
            with self.assertRaises(FederationError) as caught:
                await impostor.get_json(
                    self.b.server_name, "/_matrix/federation/v1/query/profile",
                    {"user_id": f"@nobody:{self.b.server_name}"},
                )
        finally:
            impostor.signing_key = real_key
        self.assertEqual((caught.exception.code, caught.exception.errcode), (401, "M_UNAUTHORIZED"))

    @async_test
    async def test_request_for_another_destination_is_refused(self) -> None:
        from federation.request_auth import authorization_header

        path = "/_matrix/federation/v1/query/profile?user_id=" + quote(
            f"@nobody:{self.b.server_name}"
        )
        header = authorization_header(
            "GET", path, self.a.server_name, "elsewhere.example", self.a.hs.signing_key
        )
        code, body = await self.fed_get(self.b, path, headers={"Authorization": header})
        self.assertEqual((code, body["errcode"]), (401, "M_UNAUTHORIZED"))

    @async_test
    async def test_notary_answers_with_both_signatures(self) -> None:
        code, body = await self.fed_get(
            self.b, "/_matrix/key/v2/query/" + quote(self.a.server_name)
        )
        self.assertEqual(code, 200)
        [document] = body["server_keys"]
        self.assertEqual(document["server_name"], self.a.server_name)
        self.assertEqual(
            set(document["signatures"]), {self.a.server_name, self.b.server_name}
        )
        # The batch form answers the same, and nothing for a server that does not exist.
        response = await treq.post(
            self.b.federation_url + "/_matrix/key/v2/query",
            json={"server_keys": {self.a.server_name: {}, "127.0.0.1:1": {}}},
            persistent=False,
            agent=_insecure_agent(),
        )
        batch = json.loads(await response.content())
        self.assertEqual([d["server_name"] for d in batch["server_keys"]], [self.a.server_name])

    @async_test
    async def test_version(self) -> None:
        code, body = await self.fed_get(self.a, "/_matrix/federation/v1/version")
        self.assertEqual(code, 200)
        self.assertEqual(body["server"]["name"], "homeserver")


def _insecure_agent():
    from twisted.internet import reactor
    from twisted.web.client import Agent

    from homeserver.http_client import UnverifiedTLSPolicy

    return Agent(reactor, contextFactory=UnverifiedTLSPolicy())


class ThroughANotary(TwoServersCase):
    """C trusts B as its notary: A's keys reach C through B, not from A itself."""

    async def _start(self) -> None:
        await super()._start()
        from homeserver.events.signing import encode_verify_key_base64, key_id

        b_key = self.b.hs.signing_key
        self.c = FederatingServer(trusted_key_servers=[{
            "server_name": self.b.server_name,
            "verify_keys": {key_id(b_key): encode_verify_key_base64(b_key)},
        }])
        await self.c.start()

    def tearDown(self) -> defer.Deferred:
        async def stop() -> None:
            await self.c.stop()

        stopped = defer.ensureDeferred(stop())
        stopped.addCallback(lambda _: super(ThroughANotary, self).tearDown())
        return stopped

    def record_direct_key_fetches(self) -> list[str]:
        asked_directly: list[str] = []
        real_get_json = self.c.hs.federation_client.get_json

        async def recording_get_json(destination, path, *args, **kwargs):
            if path == "/_matrix/key/v2/server":
                asked_directly.append(destination)
            return await real_get_json(destination, path, *args, **kwargs)

        self.c.hs.federation_client.get_json = recording_get_json
        return asked_directly

    @async_test
    async def test_keys_of_a_server_come_through_the_trusted_notary(self) -> None:
        asked_directly = self.record_direct_key_fetches()
        keys = await self.c.hs.keyring.get_keys(
            self.a.server_name, [f"ed25519:{self.a.hs.signing_key.version}"],
            self.c.hs.clock.time_msec(),
        )
        self.assertEqual(list(keys), [f"ed25519:{self.a.hs.signing_key.version}"])
        self.assertEqual(asked_directly, [])  # B vouched for them; A was never asked

    @async_test
    async def test_a_notary_answer_not_signed_by_the_trusted_key_is_refused(self) -> None:
        from homeserver.events.signing import generate_signing_key

        # B signs with a key C was not told to trust.
        self.b.hs.signing_key = generate_signing_key("other")
        asked_directly = self.record_direct_key_fetches()
        keys = await self.c.hs.keyring.get_keys(
            self.a.server_name, [f"ed25519:{self.a.hs.signing_key.version}"],
            self.c.hs.clock.time_msec(),
        )
        # Not from the notary; fetched from A directly instead, and checked against A itself.
        self.assertEqual(list(keys), [f"ed25519:{self.a.hs.signing_key.version}"])
        self.assertEqual(asked_directly, [self.a.server_name])
