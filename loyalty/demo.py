"""The demo: load the demo program and simulate members using the shop for a while, so the
admin and the API show living data. Every event goes through ``record_events``."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.events import EventInput, record_events
from loyalty.engine.tier_review import review_tiers
from loyalty.models import Action, Event, Funnel, KeyAction
from loyalty.program.compiled import program_changed
from loyalty.program.program_file import program_load

DEMO_PROGRAM = Path(__file__).parent / "fixtures" / "demo_program.yaml"
DEMO_PREFIX = "demo-"


def load_demo_program() -> str:
    import yaml

    return str(program_load(data=yaml.safe_load(DEMO_PROGRAM.read_text(encoding="utf-8"))))


@dataclass
class SimulationReport:
    members: int = 0
    events: int = 0
    skipped: bool = False


def _member_days(
    rng: random.Random, joined: datetime, now: datetime, zeal: float
) -> list[datetime]:
    days = []
    day = joined
    while day < now:
        if rng.random() < zeal:
            days.append(day + timedelta(minutes=rng.randint(0, 600)))
        day += timedelta(days=1)
    return [d for d in days if d < now]


CHANNELS = ("app", "app", "mini_program", "web")
CITIES = ("Shanghai", "Beijing", "Shenzhen", "Chengdu", "Hangzhou")


def simulate_members(*, members: int = 200, days: int = 60, seed: int = 7) -> SimulationReport:
    """Members with long-tailed activity (a few very active, most occasional) over ``days``;
    many drift away after a few weeks, fewer of those who set an avatar on their first day
    (the console's key indicators find it). The daily check-in is the key action.

    Runs once: if demo events exist already it does nothing.
    """
    if Event.objects.filter(idempotency_key__startswith=DEMO_PREFIX).exists():
        return SimulationReport(skipped=True)
    rng = random.Random(seed)
    now = timezone.now()
    start = now - timedelta(days=days)
    report = SimulationReport(members=members)
    with transaction.atomic():  # one commit: the demo loads in seconds even on SQLite
        if not KeyAction.objects.exists():
            KeyAction.objects.create(
                action=Action.objects.get(code="check_in"), min_per_day=1, effective_from=start
            )
            program_changed()
        Funnel.objects.get_or_create(
            name="First purchase", defaults={"steps": ["check_in", "purchase", "review"]}
        )
        for n in range(members):
            joined = start + timedelta(days=rng.random() * days * 0.8)
            member, _ = Member.objects.get_or_create(
                external_id=f"{DEMO_PREFIX}{n + 1:04d}",
                defaults={
                    "display_name": f"Demo member {n + 1}",
                    "joined_at": joined,
                    "attributes": {"channel": rng.choice(CHANNELS), "city": rng.choice(CITIES)},
                },
            )
            report.events += _simulate_member(rng, member.external_id, joined, now)
    review_tiers(at=now)
    return report


def _simulate_member(rng: random.Random, external_id: str, joined: datetime, now: datetime) -> int:
    # Pareto-distributed zeal: the share of days a member shows up.
    zeal = min(0.95, 0.04 * rng.paretovariate(1.3))
    avatar = rng.random() < 0.5
    # How long the member stays: most who never set an avatar leave within weeks.
    stays = rng.random() < (0.7 if avatar else 0.2)
    until = now if stays else joined + timedelta(days=rng.expovariate(1 / 10))
    events: list[EventInput] = []

    def emit(action: str, at: datetime, **attributes) -> None:
        events.append(
            EventInput(
                external_id=external_id,
                action=action,
                idempotency_key=f"{DEMO_PREFIX}{external_id}-{len(events) + 1}",
                occurred_at=at,
                attributes=attributes,
            )
        )

    emit("register", joined)
    if avatar:
        emit("upload_avatar", joined + timedelta(minutes=5))
    for day in _member_days(rng, joined, min(now, until), max(zeal, 0.3)):
        emit("check_in", day)
        for i in range(rng.randint(0, 4)):
            emit("browse_item", day + timedelta(minutes=i + 1), item=f"sku-{rng.randint(1, 400)}")
        if rng.random() < 0.25:
            amount = Decimal(str(round(rng.lognormvariate(4.3, 0.7), 2)))
            emit("purchase", day + timedelta(minutes=30), amount=str(amount))
            if rng.random() < 0.4:
                rating, photo = rng.randint(3, 5), rng.random() < 0.3
                emit("review", day + timedelta(minutes=40), rating=rating, has_photo=photo)
        if rng.random() < 0.08:
            emit("share", day + timedelta(minutes=50))
    # One batch per member: recorded in posting order, as one by one, in a fraction of the time.
    record_events(client=None, events=events)
    return len(events)
