"""Open a Microgrid API client and tell apart why reaching a microgrid failed.

The config flow and entry setup react to the same four failures in different ways
(a form error vs. `ConfigEntryNotReady` / `ConfigEntryAuthFailed`), so the knowledge of
which client exception means what lives here, once. This module does not import Home
Assistant: it only speaks the client's language.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from frequenz.client.base.exception import (
    ApiClientError,
    OperationUnauthenticated,
    PermissionDenied,
)
from frequenz.client.microgrid import MicrogridApiClient, MicrogridInfo


class ConnectionProblem(StrEnum):
    """Why a microgrid could not be reached; the values are translation keys."""

    INVALID_URL = "invalid_url"
    CANNOT_CONNECT = "cannot_connect"
    INVALID_AUTH = "invalid_auth"
    UNKNOWN = "unknown"


def is_sendable_key(api_key: str) -> bool:
    """Whether `api_key` can travel as gRPC metadata: printable ASCII only.

    gRPC refuses any other header value when a call starts, with an error that
    says nothing about the key; checking first lets the user learn what to fix.
    """
    return all(" " <= char <= "~" for char in api_key)


def open_client(
    url: str, *, api_key: str | None = None, signing_secret: str | None = None
) -> MicrogridApiClient:
    """Create a client for `url`, authenticating with the optional key and secret.

    Client 0.18.4's constructor takes no credentials, so the client is created
    unconnected and then connected with them (frequenz-client-base adds them to every
    call through interceptors). Empty strings count as "not given".

    Raises:
        ValueError: if the URL is malformed (scheme, missing port, unknown options).
    """
    client = MicrogridApiClient(url, connect=False)
    client.connect(auth_key=api_key or None, sign_secret=signing_secret or None)
    return client


def classify_error(err: BaseException) -> ConnectionProblem:
    """Map an exception raised while reaching a microgrid to what went wrong."""
    if isinstance(err, OperationUnauthenticated | PermissionDenied):
        return ConnectionProblem.INVALID_AUTH
    if isinstance(err, ApiClientError | TimeoutError | ConnectionError):
        return ConnectionProblem.CANNOT_CONNECT
    if isinstance(err, ValueError):
        return ConnectionProblem.INVALID_URL
    return ConnectionProblem.UNKNOWN


async def probe_microgrid(
    url: str,
    *,
    api_key: str | None = None,
    signing_secret: str | None = None,
    timeout_s: float,
) -> MicrogridInfo:
    """Check that the microgrid answers: read its info and its component list.

    Listing the components too proves the key works for more than one call and that
    the API version matches. The probe client is always disconnected again.

    Raises:
        ValueError: malformed URL.
        ApiClientError: the API failed or rejected the credentials.
        TimeoutError: no answer within `timeout_s`.
    """
    client = open_client(url, api_key=api_key, signing_secret=signing_secret)
    try:
        async with asyncio.timeout(timeout_s):
            info = await client.get_microgrid_info()
            await client.list_components()
    finally:
        await client.disconnect()
    return info
