"""The console's figures: the nightly job for one day's events, and each console page's server
time, on the bench data (``python -m bench --only console``).

The job is measured as it runs each night: after a rebuild, one day's events (the bench
history's daily average) are posted through the engine, dated yesterday, and the job runs for
what changed. The pages are rendered in process, through the whole Django stack, by an
analyst; their time is the server's alone.
"""

import random
import statistics
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

PAGES = {
    "dashboard": "/admin/",
    "cohorts": "/admin/console/cohorts/",
    "churn": "/admin/console/churn/",
    "indicators": "/admin/console/indicators/",
    "funnels": "/admin/console/funnels/",
}


def prepare() -> float:
    """A key action and a funnel as an operator would set them, then the rebuild's seconds."""
    from loyalty.insight.job import rebuild
    from loyalty.models import Action, Funnel, KeyAction
    from loyalty.program.compiled import program_changed

    if not KeyAction.objects.exists():
        KeyAction.objects.create(
            action=Action.objects.get(code="check_in"),
            min_per_day=1,
            effective_from=timezone.now() - timedelta(days=3650),
        )
        program_changed()
    Funnel.objects.get_or_create(name="bench", defaults={"steps": ["check_in", "purchase"]})
    started = time.monotonic()
    rebuild()
    return time.monotonic() - started


def nightly_runs(*, runs: int, tag: str) -> tuple[list[float], int]:
    """Seconds of the job after each of ``runs`` days of new events."""
    from accounts.models import Member
    from loyalty.engine.events import EventInput, record_events
    from loyalty.insight.job import refresh
    from loyalty.models import Event

    rng = random.Random(7)
    members = Member.objects.count()
    oldest = Event.objects.order_by("occurred_at").values_list("occurred_at", flat=True).first()
    days = max(1, (timezone.now() - oldest).days) if oldest else 1
    per_day = max(100, Event.objects.count() // days)
    ids = list(Member.objects.values_list("external_id", flat=True)[: min(members, 50_000)])
    seconds = []
    for run in range(runs):
        yesterday = timezone.now() - timedelta(days=1)
        events = [
            EventInput(
                external_id=rng.choice(ids),
                action="check_in" if rng.random() < 0.7 else "purchase",
                idempotency_key=f"console-{tag}-{run}-{n}",
                occurred_at=yesterday + timedelta(seconds=rng.randint(0, 3600)),
                attributes={} if rng.random() < 0.7 else {"amount": "25.00"},
            )
            for n in range(per_day)
        ]
        for start in range(0, len(events), 500):
            record_events(client=None, events=events[start : start + 500])
        started = time.monotonic()
        refresh()
        seconds.append(time.monotonic() - started)
    return seconds, per_day


def page_times(*, samples: int) -> dict[str, list[float]]:
    """Milliseconds of server time for each console page, as an analyst."""
    from loyalty.insight.access import ANALYST, ensure_analyst_group

    ensure_analyst_group()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-analyst", defaults={"is_staff": True}
    )
    user.groups.add(Group.objects.get(name=ANALYST))
    client = Client()
    client.force_login(user)
    return render_times(client, PAGES, samples=samples)[0]


def render_times(
    client: Client, pages: dict[str, str], *, samples: int
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Milliseconds of server time for each page (after one warming render: the compiled
    program, templates), and each page's bytes."""
    times: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for name, url in pages.items():
        client.get(url)
        runs = []
        for _ in range(samples):
            started = time.perf_counter()
            response = client.get(url)
            runs.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        times[name], sizes[name] = runs, len(response.content)
    return times, sizes


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def segment_times(key: str, *, samples: int) -> tuple[list[float], list[float], int]:
    """Milliseconds for a segment's first page of members through the API, and for its count
    (the admin's figure), on a segment of several conditions."""
    from loyalty.models import Segment, SegmentCondition
    from loyalty.segments.filters import segment_members

    segment, made = Segment.objects.get_or_create(code="bench-drifting", name="Drifting")
    if made:
        for field, operator, value in (
            ("points", "gte", "100"),
            ("days_away", "gte", "14"),
            ("state", "not_in", "churned"),
        ):
            SegmentCondition.objects.create(
                segment=segment, field=field, operator=operator, value=value
            )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    url = "/api/v1/segments/bench-drifting/members?page_size=100"
    client.get(url)
    pages, counts = [], []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url)
        pages.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content
        started = time.perf_counter()
        size = segment_members(segment).count()
        counts.append((time.perf_counter() - started) * 1000)
    return pages, counts, size
