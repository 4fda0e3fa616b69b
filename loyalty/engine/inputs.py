"""An event as the host app reports it."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.idempotency import request_hash


@dataclass(frozen=True)
class EventInput:
    external_id: str
    action: str
    idempotency_key: str
    occurred_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def request_hash(self) -> str:
        return request_hash(
            {
                "external_id": self.external_id,
                "action": self.action,
                "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
                "attributes": self.attributes,
            },
            sort_keys=True,
            compact=True,
        )
