"""The operators' admin, one module per capability; importing this package registers them all."""

from loyalty.admin import activity, gamification, insight, ledger, program, segments  # noqa: F401
