"""Referrals end to end through the web server: a newcomer registers (``PUT`` the member), names
the inviter's code, and makes a qualifying purchase, whose answer comes back once both credits
are posted (the reward task runs in the request's process after its commit, as the bench runs
Celery eagerly). Counts the flows per second with concurrent clients, and checks that every
referral was credited exactly once."""

import time
from concurrent.futures import ThreadPoolExecutor

from bench.run import RUN, Client, ok


def referral_flows(
    url: str, key: str, *, friends: int, clients: int = 8
) -> tuple[list[float], list[float], int, int]:
    """Flows/s for each of three runs, each flow's seconds, referrals not qualified, and inviter
    credits beyond one per referral."""
    import json
    import threading

    from accounts.models import Member
    from loyalty.models import Event
    from rewards.referrals.models import Referral

    # Five friends an inviter over the three runs, inviters new to it (a reused database keeps
    # earlier runs' friends): under the program's burst limit (ten a day), which would hold the
    # rest for review.
    inviters = list(
        Member.objects.filter(external_id__startswith="bench-", referrals_made__isnull=True)
        .order_by("pk")
        .values_list("external_id", flat=True)[: max(3 * friends // 5, 1)]
    )
    setup = Client(url, key)
    codes = [
        json.loads(ok(setup.get(f"/api/v1/members/{inviter}/referral")))["code"]
        for inviter in inviters
    ]
    runs, seconds = [], []
    for run in range(3):
        local = threading.local()

        def flow(i: int, run: int = run, local: threading.local = local) -> float:
            if not hasattr(local, "client"):
                local.client = Client(url, key)
            client, newcomer = local.client, f"bench-friend-{RUN}-{run}-{i}"
            started = time.monotonic()
            ok(client.put(f"/api/v1/members/{newcomer}", {"display_name": "Friend"}))
            ok(client.post(f"/api/v1/members/{newcomer}/referral", {"code": codes[i % len(codes)]}))
            ok(
                client.post(
                    "/api/v1/events",
                    {
                        "external_id": newcomer,
                        "action": "purchase",
                        "idempotency_key": f"{newcomer}-first-order",
                        "attributes": {"amount": "88.00"},
                    },
                )
            )
            return time.monotonic() - started

        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            took = list(pool.map(flow, range(friends)))
        runs.append(friends / (time.monotonic() - started))
        seconds += took
    made = Referral.objects.filter(invitee__external_id__startswith=f"bench-friend-{RUN}-")
    credited = made.filter(state=Referral.State.QUALIFIED, rewarded_at__isnull=False)
    credits = Event.objects.filter(
        action_code="referral_qualified", idempotency_key__startswith="referral:"
    ).filter(attributes__friend__startswith=f"bench-friend-{RUN}-")
    return runs, seconds, made.count() - credited.count(), credits.count() - credited.count()
