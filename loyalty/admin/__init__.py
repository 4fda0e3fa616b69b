"""The operators' admin, one module per capability; importing this package registers them all."""

from loyalty.admin import (  # noqa: F401
    activity,
    campaigns,
    drafts,
    gamification,
    insight,
    ledger,
    program,
    segments,
    simulation,
)
