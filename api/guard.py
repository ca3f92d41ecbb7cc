"""Request bodies checked before routing: a size cap, JSON numbers that must be finite, no NUL characters.

Python's JSON parser accepts ``NaN``, ``Infinity`` and ``1e999`` (as infinity); none is JSON, and
a spec holding one could not be stored or shown again, so such a body is a 422 here.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_METHODS = (b"POST", b"PUT", b"PATCH")


class BadNumber(ValueError):
    pass


def _constant(name: str) -> Any:
    raise BadNumber(f"{name} is not a JSON number; send a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadNumber(f"{text} overflows a float; send a finite number")
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def body_problem(body: bytes) -> str | None:
    """Why a JSON ``body`` cannot be accepted (a non-finite number, a NUL character), or None.

    None also for bodies that are not JSON at all: the route's own parser says what is wrong.
    """
    try:
        data = json.loads(body, parse_constant=_constant, parse_float=_float)
    except BadNumber as exc:
        return str(exc)
    except (ValueError, RecursionError):
        return None
    if _has_nul(data):
        return "a string holds a NUL character (\\u0000); remove it"
    return None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by its text, so it can be sent as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value


async def _reply(send: Send, code: int, detail: Any) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """ASGI middleware: 413 for a body above ``max_bytes``, 422 for JSON with NaN, infinity or NUL."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            msg = "the URL holds a NUL character (%00); remove it"  # no database column can hold one
            await _reply(send, 422, [{"loc": ["path"], "msg": msg, "type": "value_error"}])
            return
        if scope["type"] != "http" or scope["method"].encode() not in JSON_METHODS:
            await self.app(scope, receive, send)
            return
        too_big = f"request body above {self.max_bytes} bytes; send a smaller one (NAS_LIMITS__BODY_BYTES)"
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _reply(send, 413, too_big)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _reply(send, 413, too_big)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        if problem := body_problem(body):
            await _reply(send, 422, [{"loc": ["body"], "msg": problem, "type": "value_error"}])
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
