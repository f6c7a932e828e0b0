"""What the server says to clients: the one builder of ``error`` events and the one JSON encoder.

Every event the server publishes (ingest's refusals, the pipeline's answers and deliveries, the
media job's failures) is built and written here, so a refusal reads the same whichever part of
the server made it.

The JSON is compact, through orjson: the same text as ``json.dumps(obj, separators=(",", ":"),
ensure_ascii=False)`` about ten times faster (several events per message). What orjson refuses
and the standard library writes (integers past 64 bits, strings with lone surrogates, keys that
are not strings) still goes through the standard library, so nothing that was written before
fails now.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from client_sdk.contract import VERSION, ErrorCode

__all__ = ["dumps", "encode", "error_event", "internal_error"]


def dumps(obj: Any) -> str:
    """``obj`` as compact JSON text."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def encode(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON, an MQTT payload (the same text as ``dumps``)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_event(ref: str | None, code: ErrorCode, message: str) -> dict[str, Any]:
    """The answer to a command that is refused: ``ref`` is its id (None when it had none)."""
    return {"v": VERSION, "type": "error", "ref": ref, "code": code.value, "message": message}


def internal_error(ref: str | None) -> dict[str, Any]:
    """The answer to a command the server could not process (a fault of its own), counted."""
    from workers.metrics import command_error  # not at import: the stores write JSON with dumps

    command_error(ErrorCode.INTERNAL.value)
    return error_event(ref, ErrorCode.INTERNAL, "the server could not process it")
