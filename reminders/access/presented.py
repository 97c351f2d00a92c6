"""How a request presents an API key: `Authorization: Bearer <key>`, or `X-API-Key: <key>`.

One reading for every HTTP entry point that takes keys (the /v1 API, the FHIR endpoints).
"""

from __future__ import annotations

from collections.abc import Mapping


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries (header names in lower case), bearer token first."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None
