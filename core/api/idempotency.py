"""Every write takes an idempotency key: in the body, or in the ``Idempotency-Key`` header."""

from typing import Any

from rest_framework.request import Request


def body_with_idempotency_key(request: Request) -> Any:
    """The request body, with the header's key added when the body has none."""
    data = request.data
    header = request.headers.get("Idempotency-Key")
    if isinstance(data, dict) and "idempotency_key" not in data and header:
        return {**data, "idempotency_key": header}
    return data
