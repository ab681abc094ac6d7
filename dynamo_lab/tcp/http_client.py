"""A small blocking HTTP/JSON client for the node API (standard library only).

Used by :class:`~dynamo_lab.tcp.cluster.TcpCluster` (from worker threads) and by the CLI.
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Optional
from urllib.parse import quote

from .framing import split_address

#: The header that carries the cluster's token to the admin endpoints.
TOKEN_HEADER = "X-Dynamo-Token"
#: The header that names the client of a request (for the node's trace).
CLIENT_HEADER = "X-Dynamo-Client"


def kv_path(key: str) -> str:
    """The URL path of ``key``: every character that is not a letter or digit is escaped, so
    keys with ``/``, ``?``, ``..`` or spaces reach the node as they are."""
    return "/kv/" + quote(key, safe="").replace(".", "%2E")


def http_json(method: str, address: str, path: str, body: Any = None, *,
              timeout_s: float = 10.0, token: str = "", client: str = "") -> tuple[int, Any]:
    """Send one request to ``HOST:PORT`` and return ``(status, parsed JSON body)``.

    Raises ``OSError`` (``ConnectionRefusedError``, ``TimeoutError``...) when the node cannot
    be reached or does not answer in ``timeout_s``, and ``ValueError`` if the answer is not
    JSON. ``client`` names the client in the node's trace.
    """
    host, port = split_address(address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    headers = {"Connection": "close"}
    data: Optional[bytes] = None
    if body is not None:
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if token:
        headers[TOKEN_HEADER] = token
    if client:
        headers[CLIENT_HEADER] = client
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
    except http.client.HTTPException as exc:
        raise ConnectionError(f"bad HTTP answer from {address}: {exc!r}") from None
    finally:
        conn.close()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        raise ValueError(f"{address} answered {status} with a body that is not JSON: "
                         f"{raw[:200]!r}") from None
