"""Rate limits: per API key and per member token, in fixed one-minute windows counted in the
shared cache (Redis when ``CACHE_URL`` points at it), so every process of the deployment counts
against one budget.

DRF's ``SimpleRateThrottle`` keeps each caller's request times as a list and counts one per
request; a batch must count its events, and a busy key's list would be thousands of times long.
So the window is one counter, bumped by the request's cost in one atomic ``incr``.
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


def request_cost(request, view) -> int:
    """What a request counts against its limit: one, or a batch's number of events."""
    cost = getattr(view, "throttle_cost", None)
    return max(int(cost(request)), 1) if cost else 1


class ClientRateThrottle(BaseThrottle):
    """An API key's own limit (``ApiClient.rate_limit_per_minute``) or the default
    ``LOYALTY_RATE_LIMIT_PER_MINUTE``; a member token's ``LOYALTY_MEMBER_RATE_LIMIT_PER_MINUTE``,
    per member. Answers 429 ``rate_limited`` with ``Retry-After`` (the window's end)."""

    def allow_request(self, request, view) -> bool:
        principal = request.user
        if principal is None:
            return True  # refused as unauthenticated anyway
        if principal.is_member:
            ident, limit = f"m{principal.member.pk}", settings.LOYALTY_MEMBER_RATE_LIMIT_PER_MINUTE
        else:
            client = principal.client
            limit = client.rate_limit_per_minute or settings.LOYALTY_RATE_LIMIT_PER_MINUTE
            ident = f"c{client.pk}"
        if not limit:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"loyalty:rate:{ident}:{window}"
        cost = request_cost(request, view)
        try:
            used = cache.incr(key, cost)
        except ValueError:  # the window's first request (or a racing one)
            used = cost if cache.add(key, cost, timeout=WINDOW_SECONDS + 5) else None
            if used is None:
                used = cache.incr(key, cost)
        if used <= limit:
            return True
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return False

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
