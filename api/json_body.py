"""JSON bodies written straight with orjson, for the answers that are long lists (candles, trade
pages): their values are already exact text, and validating thousands of pydantic models only
to print them would cost more than the query. The layouts are the pydantic models of
api/models.py, which document them in OpenAPI (and the schemathesis test checks the answers
against them)."""

from typing import Any

import orjson
from fastapi import Response


def json_response(body: dict[str, Any]) -> Response:
    # UTC datetimes print as "...Z" and enums as their values, as pydantic prints them elsewhere.
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")
