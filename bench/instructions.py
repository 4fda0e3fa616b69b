"""Python instructions per event, counted by callgrind: a measure that does not swing with the
machine's speed (the same code and data give the same count to within about 0.1 %).

The engine runs in process, through the whole WSGI handler (middleware, DRF, the event flow),
against the benchmark data (``python -m bench --size medium --generate-only`` first). Each flow
is counted twice under ``valgrind --tool=callgrind``: once warming up only, once warming up and
then recording the measured events; the difference over those events is what one event costs
the engine's process (PostgreSQL's work is not counted). Each run starts from its own copy of
the benchmark database (``CREATE DATABASE … TEMPLATE``), so that every run meets the same
members in the same state. Compare two versions of the code by running this from each
checkout against the same data.

    DATABASE_URL=postgres://postgres@/loyalty_bench python -m bench.instructions [--flow batch]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.inprocess import engine

FLOWS = {
    # flow: (events warmed up, events measured, events per request); a redemption is one
    "batch": (500, 1000, 500),
    "single": (100, 200, 1),
    "redemption": (50, 200, 1),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flow", choices=[*FLOWS, "all"], default="all")
    parser.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        _record(args.flow, measured=args.inner)
        return
    subprocess.run([sys.executable, "-m", "compileall", "-q", "."], check=True)
    for flow in FLOWS if args.flow == "all" else [args.flow]:
        _, measured, _ = FLOWS[flow]
        base, full = (_count(flow, events) for events in (0, measured))
        unit = "a redemption" if flow == "redemption" else "an event"
        print(f"{flow}: {(full - base) / measured / 1e6:.3f} M instructions {unit}")


@contextmanager
def _copy_of_the_data() -> Iterator[str]:
    """A fresh copy of the benchmark database, dropped afterwards: its URL."""
    url = urlsplit(os.environ["DATABASE_URL"])
    source = url.path.lstrip("/")
    copy = f"{source}_instructions_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{source}"')
    try:
        yield urlunsplit(url._replace(path=f"/{copy}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def _count(flow: str, measured: int) -> int:
    """Instructions of one run of the flow under callgrind, on a fresh copy of the data."""
    with tempfile.TemporaryDirectory() as folder, _copy_of_the_data() as database_url:
        out = os.path.join(folder, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "bench.instructions",
                "--flow",
                flow,
                "--inner",
                str(measured),
            ],
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0", "DATABASE_URL": database_url},
            stderr=subprocess.DEVNULL,
        )
        with open(out) as report:
            totals = re.search(r"^(?:summary|totals): (\d+)", report.read(), re.MULTILINE)
        return int(totals.group(1))


def _record(flow: str, *, measured: int) -> None:
    warm, _, per_request = FLOWS[flow]
    # Each run has a copy of the data of its own: the same keys every time.
    client, key, members = engine("instructions-run")
    members = members[:5000]
    sent = 0
    if flow == "redemption":
        _stock_a_reward(members)

    def post(count: int) -> None:
        nonlocal sent
        if flow == "redemption":
            for _ in range(count):
                body = {
                    "external_id": members[sent * 7 % len(members)],
                    "reward": "instructions-gift",
                    "idempotency_key": f"instructions-{sent}",
                }
                sent += 1
                response = client.post(
                    "/api/v1/redemptions",
                    data=json.dumps(body),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {key}",
                )
                assert response.status_code == 201, response.content
            return
        for start in range(0, count, per_request):
            events = [
                {
                    "external_id": members[(sent + i) * 7 % len(members)],
                    "action": "purchase",
                    "idempotency_key": f"instructions-{sent + i}",
                    "attributes": {"amount": "120.00"},
                }
                for i in range(min(per_request, count - start))
            ]
            sent += len(events)
            path, body = (
                ("/api/v1/events", events[0])
                if per_request == 1
                else ("/api/v1/events/batch", {"events": events})
            )
            response = client.post(
                path,
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
            assert response.status_code in (200, 201), response.content

    post(warm)
    post(measured)


def _stock_a_reward(members: list[str]) -> None:
    """A digital reward costing one point, stocked for every redemption, and a point for each
    member the flow redeems for."""
    from loyalty.engine.adjustments import adjust
    from rewards.models import Reward

    Reward.objects.update_or_create(
        code="instructions-gift",
        defaults={"name": "Gift", "kind": "digital", "cost_points": 1, "stock": 10_000},
    )
    warm, measured, _ = FLOWS["redemption"]
    for n in range(warm + measured):
        external_id = members[n * 7 % len(members)]
        adjust(
            member=_member(external_id),
            currency="points",
            amount=5,
            reason="instructions",
            idempotency_key=f"instructions-points-{n}",
        )


def _member(external_id: str):
    from accounts.models import Member

    return Member.objects.get(external_id=external_id)


if __name__ == "__main__":
    main()
