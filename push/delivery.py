"""Sending one notification to one pusher: over the push gateway API (`kind: http`) or as an
encrypted Web Push message (`kind: webpush`, MSC4174), and what the answer means."""

from __future__ import annotations

import base64
import enum
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher

from homeserver.http_client import BlockedAddress, HttpClient, HttpClientError, InvalidUrl
from storage.pushers import Pusher

logger = logging.getLogger(__name__)

# How long a push service keeps a Web Push message for an offline browser (RFC 8030 TTL).
WEBPUSH_TTL_S = 24 * 60 * 60
# Lifetime of the VAPID JWT we sign for each push (RFC 8292 allows at most 24 hours).
VAPID_LIFETIME_S = 12 * 60 * 60
PUSH_TIMEOUT_S = 30.0


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    # Not delivered, and trying again will not help (a 4xx): the notification is skipped.
    DROPPED = "dropped"
    # Not delivered this time (unreachable, 5xx, 429): try again later.
    RETRY = "retry"
    # The receiver says the pusher is gone (rejected pushkey, 403/404/410): delete it.
    REMOVE = "remove"


class GatewayDelivery:
    """`kind: http`: POST {"notification": ...} to the pusher's push gateway URL."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    async def deliver(self, pusher: Pusher, notification: dict[str, Any],
                      tweaks: dict[str, Any]) -> Outcome:
        device = {
            "app_id": pusher.app_id,
            "pushkey": pusher.pushkey,
            "pushkey_ts": pusher.created_ts // 1000,
            # The spec: everything the client gave in `data` but the URL.
            "data": {k: v for k, v in pusher.data.items() if k != "url"},
            "tweaks": tweaks,
        }
        body = {"notification": {**notification, "devices": [device]}}
        try:
            response = await self.http.request(
                "POST", pusher.data["url"], headers={"Content-Type": "application/json"},
                body=json.dumps(body).encode("utf-8"), timeout=PUSH_TIMEOUT_S, retries=0,
            )
        except HttpClientError as e:
            return _unreachable(e, pusher)
        if response.code == 200:
            try:
                rejected = response.json().get("rejected", [])
            except (ValueError, AttributeError):
                rejected = []
            if isinstance(rejected, list) and pusher.pushkey in rejected:
                return Outcome.REMOVE
            return Outcome.DELIVERED
        return _retry_or_drop(response.code, pusher)


class WebPushDelivery:
    """`kind: webpush`: the payload encrypted for the browser (RFC 8291, aes128gcm) and
    signed with our VAPID key (RFC 8292), POSTed to its push service."""

    def __init__(self, http: HttpClient, vapid_private_key: ec.EllipticCurvePrivateKey,
                 contact: str) -> None:
        self.http = http
        self.vapid = Vapid02(private_key=vapid_private_key)
        self.contact = contact
        self.public_key = vapid_public_key(vapid_private_key)

    async def deliver(self, pusher: Pusher, payload: dict[str, Any]) -> Outcome:
        url = pusher.data["url"]
        try:
            encrypted = WebPusher(
                {"endpoint": url, "keys": {"p256dh": pusher.pushkey, "auth": pusher.data["auth"]}}
            ).encode(json.dumps(payload).encode("utf-8"), "aes128gcm")
        except Exception as e:  # pywebpush raises a mix of its own and cryptography's errors
            logger.info("Cannot encrypt for the Web Push pusher of %s: %s", pusher.user_id, e)
            return Outcome.REMOVE
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(WEBPUSH_TTL_S),
            "Urgency": "high" if payload.get("prio") == "high" else "normal",
            **self._vapid_headers(url),
        }
        try:
            # No redirects: the address we checked is the one we post to (MSC4174).
            response = await self.http.request(
                "POST", url, headers=headers, body=encrypted["body"], timeout=PUSH_TIMEOUT_S,
                retries=0, max_redirects=0,
            )
        except HttpClientError as e:
            return _unreachable(e, pusher)
        if 200 <= response.code < 300:
            return Outcome.DELIVERED
        if response.code in (403, 404, 410):
            return Outcome.REMOVE  # RFC 8030: the subscription is gone
        return _retry_or_drop(response.code, pusher)

    def _vapid_headers(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "exp": int(time.time()) + VAPID_LIFETIME_S,
            "sub": self.contact,
        }
        return {k: v for k, v in self.vapid.sign(claims).items() if k.lower() == "authorization"}


def load_vapid_key(path: str) -> ec.EllipticCurvePrivateKey:
    """The VAPID private key from its PEM file (generate-config writes one)."""
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: not a P-256 private key")
    return key


def vapid_public_key(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The public key as the `m.webpush` capability gives it: uncompressed point, URL-safe
    base64 without padding."""
    raw = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unreachable(error: HttpClientError, pusher: Pusher) -> Outcome:
    if isinstance(error, BlockedAddress | InvalidUrl):
        # A private address (not in ip_range_whitelist) stays refused: retrying cannot help.
        logger.info("Push for %s (%s) refused: %s", pusher.user_id, pusher.app_id, error)
        return Outcome.DROPPED
    logger.info("Pushing for %s (%s) failed: %s", pusher.user_id, pusher.app_id, error)
    return Outcome.RETRY


def _retry_or_drop(code: int, pusher: Pusher) -> Outcome:
    if code == 429 or code >= 500:
        return Outcome.RETRY
    logger.info("Push for %s (%s) refused with %d; dropped", pusher.user_id, pusher.app_id, code)
    return Outcome.DROPPED
