"""The one outbound HTTP client (treq): timeouts, bounded responses, retries, an IP blocklist.

Everything the server fetches from elsewhere (URL previews now; federation, pushers later) goes
through `HttpClient`, so that no request can be pointed at the server's own network. The
blocklist is enforced where the connection is made: each host name is resolved once, every
resolved address is checked, and the connection goes to a checked address itself. Checking a
name and then letting the TCP stack resolve it again would let a DNS server answer "public"
the first time and "127.0.0.1" the second (DNS rebinding).
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import treq.client
from OpenSSL import SSL
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.interfaces import (
    IHostnameResolver,
    IOpenSSLClientConnectionCreator,
    IProtocolFactory,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import Certificate, CertificateOptions, trustRootFromCertificates
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    RequestTransmissionFailed,
    ResponseDone,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory, IPolicyForHTTPS, IResponse
from zope.interface import implementer

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# Retrying these cannot do something twice that the server meant to happen once.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Failures of the connection rather than answers of the server: candidates for a retry.
_TRANSPORT_ERRORS = (ConnectError, DNSLookupError, ResponseNeverReceived, RequestTransmissionFailed)


class HttpClientError(Exception):
    """An outbound request failed before a complete response arrived."""


class InvalidUrl(HttpClientError):
    pass


class BlockedAddress(HttpClientError):
    """Every address of the host is on the blocklist (and not on the whitelist)."""


class ResponseTooLarge(HttpClientError):
    pass


class RequestTimedOut(HttpClientError):
    pass


class ConnectionFailed(HttpClientError):
    pass


@dataclass(frozen=True)
class IPPolicy:
    """Which addresses outbound requests may reach: anything not blacklisted, or whitelisted."""

    blacklist: tuple[IPNetwork, ...]
    whitelist: tuple[IPNetwork, ...] = ()

    def allows(self, address: str) -> bool:
        ip = _parse_ip(address)
        if ip is None:
            return False
        candidates: list[IPAddress] = [ip]
        # ::ffff:127.0.0.1 reaches 127.0.0.1 on a dual-stack host: judge it as the IPv4 address.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        if any(_within(c, self.whitelist) for c in candidates):
            return True
        return not any(_within(c, self.blacklist) for c in candidates)


def _parse_ip(text: str) -> IPAddress | None:
    try:
        # Drop an IPv6 zone ("fe80::1%eth0"): the range decides, not the interface.
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _within(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


@dataclass(frozen=True)
class HttpResponse:
    code: int
    headers: Headers
    body: bytes
    url: str  # after redirects

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise HttpClientError(f"response from {self.url} is not JSON: {e}") from None


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTLS:
    """TLS that sends SNI but accepts any certificate (federation_verify_certificates: false)."""

    def __init__(self, hostname: bytes) -> None:
        self._hostname = hostname
        self._context = CertificateOptions(verify=False).getContext()

    def clientConnectionForTLS(self, tls_protocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tls_protocol)
        if _parse_ip(self._hostname.decode("ascii")) is None:
            connection.set_tlsext_host_name(self._hostname)
        connection.set_connect_state()
        return connection


@implementer(IPolicyForHTTPS)
class UnverifiedTLSPolicy:
    """Accepts every server certificate: only for test set-ups that ask for it in config."""

    def creatorForNetloc(self, hostname: bytes, port: int) -> _UnverifiedTLS:
        return _UnverifiedTLS(hostname)


# -- connecting only to checked addresses --------------------------------------------------------


@implementer(IResolutionReceiver)
class _Addresses:
    def __init__(self) -> None:
        self.found: list[str] = []
        self.done: defer.Deferred[list[str]] = defer.Deferred()

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        if address.host not in self.found:
            self.found.append(address.host)

    def resolutionComplete(self) -> None:
        if not self.done.called:  # it is, if the request was cancelled meanwhile
            self.done.callback(self.found)


@implementer(IStreamClientEndpoint)
class _CheckedEndpoint:
    """Resolves the host once, drops blocked addresses, and connects to an allowed one."""

    def __init__(self, client: HttpClient, host: str, port: int, tls: bool) -> None:
        self._client = client
        self._host = host
        self._port = port
        self._tls = tls
        # Federation may connect elsewhere (an SRV target) than the name the certificate is for.
        self._connect_host = client.connect_host(host, port) if client.connect_host else host

    def connect(self, factory: IProtocolFactory) -> defer.Deferred:
        return defer.ensureDeferred(self._connect(factory))

    async def _connect(self, factory: IProtocolFactory) -> Any:
        client = self._client
        host = self._connect_host
        addresses = [host] if _parse_ip(host) else await self._resolve()
        allowed = [a for a in addresses if client.policy.allows(a)]
        if not allowed:
            if addresses:
                logger.info("Refusing outbound request to %s: %s blocked", host, addresses)
                raise BlockedAddress(f"{host} resolves only to blocked addresses")
            raise DNSLookupError(f"no addresses for {host}")
        last_error: BaseException | None = None
        for address in allowed[:4]:
            try:
                return await self._endpoint_for(address).connect(factory)
            except ConnectError as e:
                last_error = e
        assert last_error is not None
        raise last_error

    async def _resolve(self) -> list[str]:
        receiver = _Addresses()
        self._client.resolver.resolveHostName(
            receiver, self._connect_host, self._port, addressTypes=[IPv4Address, IPv6Address]
        )
        return await receiver.done

    def _endpoint_for(self, address: str) -> IStreamClientEndpoint:
        client = self._client
        ip = _parse_ip(address)
        tcp_class = (
            TCP6ClientEndpoint if isinstance(ip, ipaddress.IPv6Address) else TCP4ClientEndpoint
        )
        endpoint = tcp_class(client.reactor, address, self._port, timeout=client.connect_timeout)
        if not self._tls:
            return endpoint
        # Certificates are checked against the host name, not the address we connected to.
        creator = client.tls_policy.creatorForNetloc(self._host.encode("ascii"), self._port)
        return wrapClientTLS(creator, endpoint)


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        host = uri.host.decode("ascii").strip("[]")
        return _CheckedEndpoint(self._client, host, uri.port, uri.scheme == b"https")


# -- reading a bounded body ----------------------------------------------------------------------


class _BoundedBody(Protocol):
    """Collects a response body, giving up (and dropping the connection) past `limit` bytes."""

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        self.chunks: list[bytes] = []
        self.size = 0
        self.done: defer.Deferred[bytes] = defer.Deferred(lambda _d: self._stop())

    def connectionMade(self) -> None:
        if self.declared is not None and self.declared > self.limit:
            self._fail(ResponseTooLarge(f"response declares {self.declared} bytes"))

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self._fail(ResponseTooLarge(f"response is over {self.limit} bytes"))
            return
        self.chunks.append(data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self.done.called:
            return
        if reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)

    def _fail(self, error: Exception) -> None:
        self.done.errback(error)
        self._stop()

    def _stop(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()


def _read_body(response: IResponse, limit: int) -> defer.Deferred[bytes]:
    declared = None if response.length is UNKNOWN_LENGTH else response.length
    reader = _BoundedBody(limit, declared)
    response.deliverBody(reader)
    return reader.done


# -- the client ------------------------------------------------------------------------------------


def system_trust_policy() -> IPolicyForHTTPS:
    """Certificates checked against the system's CA bundle, or the bundle that SSL_CERT_FILE
    (as OpenSSL reads it) or REQUESTS_CA_BUNDLE (as requests does) names: the way operators
    add a private CA. Read once, when the client is made."""
    bundle = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
    if not bundle:
        return BrowserLikePolicyForHTTPS()
    with open(bundle, "rb") as f:
        pem = f.read()
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in pem.split(marker) if b"-----BEGIN" in block]
    certificates = [Certificate.loadPEM(block) for block in blocks]
    return BrowserLikePolicyForHTTPS(trustRoot=trustRootFromCertificates(certificates))


class HttpClient:
    """Outbound HTTP(S) with an IP policy. One instance per policy; share it."""

    def __init__(
        self,
        reactor: Any,
        policy: IPPolicy,
        *,
        user_agent: str = "homeserver",
        resolver: IHostnameResolver | None = None,
        tls_policy: IPolicyForHTTPS | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 60.0,
        max_response_size: int = 10 * 1024 * 1024,
        retries: int = 2,
        retry_backoff: float = 0.5,
        persistent: bool = False,
        connect_host: Callable[[str, int], str] | None = None,
    ) -> None:
        self.reactor = reactor
        # (URL host, port) -> the host to connect to instead; the URL host names the certificate.
        self.connect_host = connect_host
        self.policy = policy
        self.user_agent = user_agent
        self.resolver = resolver or reactor.nameResolver
        self.tls_policy = tls_policy or BrowserLikePolicyForHTTPS()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_response_size = max_response_size
        self.retries = retries
        self.retry_backoff = retry_backoff
        self._pool = HTTPConnectionPool(reactor, persistent=persistent)
        # We retry ourselves, knowing which requests are safe to repeat.
        self._pool.retryAutomatically = False
        self._agent = Agent.usingEndpointFactory(reactor, _EndpointFactory(self), pool=self._pool)
        self._treq = treq.client.HTTPClient(self._agent)

    @classmethod
    def from_config(cls, config: Any, reactor: Any, **kwargs: Any) -> HttpClient:
        """The client for federation and other server-to-server traffic (ip_range_*)."""
        policy = IPPolicy(tuple(config.ip_range_blacklist), tuple(config.ip_range_whitelist))
        return cls(reactor, policy, **kwargs)

    async def close(self) -> None:
        await self._pool.closeCachedConnections()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        max_size: int | None = None,
        max_redirects: int = 0,
        retries: int | None = None,
    ) -> HttpResponse:
        """Sends the request and reads the whole (bounded) response, any status code.

        `timeout` covers everything: connecting, retries, redirects and reading the body.
        Raises HttpClientError (BlockedAddress, ResponseTooLarge, RequestTimedOut, ...).
        """
        first = _Request(method.upper(), url, dict(headers or {}), body)
        limits = _Limits(
            max_size or self.max_response_size,
            max_redirects,
            self.retries if retries is None else retries,
        )
        work = defer.ensureDeferred(self._follow(first, limits))
        work.addTimeout(timeout or self.request_timeout, self.reactor)
        try:
            return await work
        except defer.TimeoutError:
            raise RequestTimedOut(f"{method} {_redact(url)} timed out") from None

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        response = await self.request("GET", url, **kwargs)
        if response.code != 200:
            raise HttpClientError(f"GET {_redact(url)} answered {response.code}")
        return response.json()

    async def _follow(self, request: _Request, limits: _Limits) -> HttpResponse:
        for _ in range(limits.redirects + 1):
            response = await self._with_retries(request, limits)
            location = response.header("Location")
            if response.code not in _REDIRECT_CODES or not location or limits.redirects == 0:
                return response
            request = request.redirected(response.code, urljoin(request.url, location))
        raise HttpClientError(f"too many redirects from {_redact(request.url)}")

    async def _with_retries(self, request: _Request, limits: _Limits) -> HttpResponse:
        for attempt in range(limits.retries + 1):
            try:
                return await self._once(request, limits.size)
            except _TRANSPORT_ERRORS as e:
                if _cancelled(e):
                    raise defer.CancelledError() from None  # the timeout: no more tries
                # Nothing was sent if we never connected; otherwise only repeat what is safe.
                safe = isinstance(e, ConnectError | DNSLookupError) or request.method in _IDEMPOTENT
                if not safe or attempt == limits.retries:
                    raise ConnectionFailed(f"{request}: {_describe(e)}") from None
                delay = self.retry_backoff * 2**attempt
                logger.info("Retrying %s in %.1fs: %s", request, delay, _describe(e))
                await task.deferLater(self.reactor, delay, lambda: None)
        raise AssertionError("unreachable")

    async def _once(self, request: _Request, max_size: int) -> HttpResponse:
        ipv6_literal = _check_url(request.url)
        headers = Headers(
            {k: [v] for k, v in {"User-Agent": self.user_agent, **request.headers}.items()}
        )
        if ipv6_literal:
            # treq's URL handling (hyperlink) IDNA-encodes every host and fails on IPv6
            # literals (python-hyper/hyperlink#68), so these go to the Agent underneath.
            body = None if request.body is None else FileBodyProducer(io.BytesIO(request.body))
            response = await self._agent.request(
                request.method.encode("ascii"), request.url.encode("ascii"), headers, body
            )
        else:
            treq_response = await self._treq.request(
                request.method,
                request.url,
                headers=headers,
                data=request.body,
                allow_redirects=False,
                unbuffered=True,
            )
            response = treq_response.original
        content = await _read_body(response, max_size)
        return HttpResponse(response.code, response.headers, content, request.url)


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    def redirected(self, code: int, url: str) -> _Request:
        method, body = self.method, self.body
        if code == 303 or (code in (301, 302) and method == "POST"):
            method, body = "GET", None
        headers = self.headers
        if urlsplit(url).netloc != urlsplit(self.url).netloc:
            # Credentials are for the server they were meant for, not wherever it sends us.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return _Request(method, url, headers, body)

    def __str__(self) -> str:
        return f"{self.method} {_redact(self.url)}"


@dataclass(frozen=True)
class _Limits:
    size: int
    redirects: int
    retries: int


def _check_url(url: str) -> bool:
    """Raises InvalidUrl unless `url` is http(s) with a host; True if that host is an IPv6
    literal."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise InvalidUrl(f"not a valid URL: {_redact(url)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidUrl(f"only http and https URLs with a host can be fetched: {_redact(url)}")
    if ":" in parts.hostname and not url.isascii():
        raise InvalidUrl(f"not a valid URL: {_redact(url)}")
    return ":" in parts.hostname


def _cancelled(error: BaseException) -> bool:
    return any(r.check(defer.CancelledError) for r in getattr(error, "reasons", ()))


def _describe(error: BaseException) -> str:
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(str(r.value) for r in reasons)
    return str(error) or type(error).__name__


def _redact(url: str) -> str:
    """The URL without its query, which may carry secrets, for messages and logs."""
    return url.split("?", 1)[0][:200]
