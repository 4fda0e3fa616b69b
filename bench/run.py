"""The benchmark suite: one command, one table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/loyalty_bench .venv/bin/python -m bench --size small

It (re)creates the bench database's schema, loads the demo program and catalog, generates the
history for the size, then measures each figure a few times and prints the median, the spread
(min–max), the target and whether the median meets it. ``--size smoke`` keeps the suite
working in CI (no timing is asserted anywhere).
"""

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# In every idempotency key the suite sends: a run on reused data never replays an earlier one's.
RUN = f"{int(time.time()):x}"


@dataclass
class Figure:
    name: str
    unit: str
    runs: list[float]
    target: str
    passed: bool | None
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def cpu_gauge() -> float:
    """Milliseconds a fixed pure-Python loop takes (best of three): how fast the machine is
    now. Machines here vary by half from hour to hour; figures of two runs compare only
    alongside their gauges."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return best * 1000


def _stat(pid: int) -> list[str] | None:
    """A process's ``/proc/<pid>/stat`` fields after its name (state, parent pid, …); None if
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used, all its threads; 0 if it is gone."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (the web server's workers)."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and (fields := _stat(int(entry))) and int(fields[1]) == pid
    ]


def _machine_busy_seconds() -> float:
    """CPU the whole machine has spent busy, all cores (``/proc/stat``: not idle, not waiting
    on the disk, not stolen by the host)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class CpuSplit:
    """The CPU a figure cost, per request, on each side of the machine: the engine (the WSGI
    server's processes), the client (this process) and the rest, which is PostgreSQL's
    processes and the kernel's and Redis's share (the machine's busy time less the other
    two). On two shared cores the three add up to what a request really costs, which wall
    time hides."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.available = os.path.exists("/proc/stat")

    def _read(self) -> tuple[float, dict[int, float], float]:
        engine = [self.server_pid, *_children(self.server_pid)]
        return (
            _cpu_seconds(os.getpid()),
            {pid: _cpu_seconds(pid) for pid in engine},
            _machine_busy_seconds(),
        )

    @contextmanager
    def measuring(self) -> Iterator[list[float]]:
        """Yields a list that holds, after the block, the CPU seconds of the client, the engine
        and the rest."""
        spent: list[float] = []
        if not self.available:
            yield spent
            return
        client, engine, busy = self._read()
        yield spent
        client_after, engine_after, busy_after = self._read()
        client = client_after - client
        engine = sum(seconds - engine.get(pid, 0.0) for pid, seconds in engine_after.items())
        spent += [client, engine, busy_after - busy - client - engine]

    @staticmethod
    def note(spent: list[float], requests: int) -> str:
        if not spent:
            return ""
        client, engine, rest = (seconds / requests * 1000 for seconds in spent)
        return (
            f"; CPU per request: engine {engine:.1f} ms, PostgreSQL and the rest {rest:.1f} ms, "
            f"client {client:.1f} ms"
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- Set-up -----------------------------------------------------------------------------------


def setup(size: str, log: Callable[[str], None]) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    from bench.generate import SIZES, generate

    log("Resetting the bench database…")
    call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    from loyalty.demo import load_demo_program

    load_demo_program()
    call_command("load_demo_catalog", verbosity=0)
    members, events = SIZES[size]
    log(f"Generating {members:,} members and about {events:,} events…")
    made = generate(
        members=members,
        events=events,
        progress=log,
        heavy_entries=10_000 if size != "smoke" else 1_000,
    )
    log(f"  done: {made.events:,} events, {made.entries:,} ledger entries in {made.seconds:.0f} s")
    # The generator writes scores in bulk, past the store: a Redis store refills from them.
    from django.db import connection

    from loyalty.models import Leaderboard
    from loyalty.scores.counting import store as chosen_store

    store = chosen_store()

    for board in Leaderboard.objects.all():
        store.forget(board)
    # As a live database would be: statistics for the planner, visibility maps for index-only
    # scans, and no autovacuum of the fresh rows running under the measurements.
    log("Vacuuming and analysing…")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


def ensure_database() -> None:
    """Create the bench database if it does not exist yet."""
    import environ
    import psycopg

    url = environ.Env.db_url_config(os.environ.get("DATABASE_URL", ""))
    if url.get("ENGINE") != "django.db.backends.postgresql":
        raise SystemExit(
            "The benchmarks need PostgreSQL: set DATABASE_URL=postgres://…/loyalty_bench"
        )
    from bench.generate import conninfo

    with psycopg.connect(conninfo(url, dbname="postgres"), autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [url["NAME"]]
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{url["NAME"]}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_env(port: int, **extra: str) -> dict[str, str]:
    """The environment ``config.serve`` runs with here: this one with production settings (no
    DEBUG, no broker), bound to ``port`` on loopback; ``extra`` added."""
    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "ERROR",  # refusals (4xx) are expected in the redemption race
        "BIND": f"127.0.0.1:{port}",
        # The bench measures the engine: the rate limits count every request, and never refuse.
        "LOYALTY_RATE_LIMIT_PER_MINUTE": "1000000000",
        "LOYALTY_MEMBER_RATE_LIMIT_PER_MINUTE": "1000000000",
        **extra,
    }


@contextmanager
def server():
    """The engine behind its web server on loopback, configured as in production
    (``config/serve.py``): yields its address and the server's main process's pid."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "config.serve"],
        cwd=ROOT,
        env=served_env(port),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                Client(url, "").get("/api/v1/members")
                break
            except OSError:
                time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


class Client:
    """One keep-alive HTTP/1.1 connection to the engine, by the standard library's
    ``http.client``: a third of the CPU per request of a full-featured client, left to the
    engine, which shares the machine's cores with it."""

    def __init__(self, url: str, key: str, timeout: float = 60):
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict) -> tuple[int, bytes]:
        return self._request("POST", path, json.dumps(body).encode())

    def put(self, path: str, body: dict) -> tuple[int, bytes]:
        return self._request("PUT", path, json.dumps(body).encode())

    def get(self, path: str) -> tuple[int, bytes]:
        return self._request("GET", path, None)

    def _request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def ok(answer: tuple[int, bytes]) -> bytes:
    status, body = answer
    if not 200 <= status < 300:
        raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return body


def api_key() -> str:
    from accounts.models import ApiClient
    from accounts.scopes import SCOPES
    from accounts.services import api_client_create, api_client_rotate_key

    # Rotated, not replaced: the client's redemptions of an earlier run keep pointing at it.
    if client := ApiClient.objects.filter(name="bench").first():
        return api_client_rotate_key(client=client)
    return api_client_create(name="bench", scopes=list(SCOPES))[1]


# --- Figures ----------------------------------------------------------------------------------


# Batch ingestion's concurrent clients, and the raw limit's concurrent connections: the two
# figures are compared at the same concurrency. (With one connection the raw limit leaves a
# core idle and reads as half of what the machine can write.)
BATCH_CLIENTS = 2


def batch_and_raw(url: str, key: str, *, batches: int) -> tuple[list[float], list[float]]:
    """Batch ingestion and the raw limit, three runs each, taking turns (raw, batch, raw, …)
    so that both meet the machine in the same state: here its speed drifts within minutes."""
    import psycopg

    from accounts.models import Member
    from bench.generate import dsn

    ids = list(
        Member.objects.filter(external_id__startswith="bench-").values_list(
            "external_id", flat=True
        )[:200_000]
    )
    batch, raw = [], []
    # Autocommit: each `conn.transaction()` is a real transaction (not a savepoint), as the
    # engine's are.
    connections = [psycopg.connect(dsn(), autocommit=True) for _ in range(BATCH_CLIENTS)]
    try:
        member_ids = [
            r[0]
            for r in connections[0].execute(
                "SELECT member_id FROM loyalty_memberstanding LIMIT 200000"
            )
        ]
        action_id = (
            connections[0]
            .execute("SELECT id FROM loyalty_action WHERE code = 'purchase'")
            .fetchone()[0]
        )
        for run in range(3):
            raw.append(
                raw_limit(connections, member_ids, action_id, run=run, batches=batches * 5 // 3)
            )
            batch.append(batch_ingestion(url, key, ids, run=run, batches=batches))
    finally:
        for connection in connections:
            connection.close()
    return batch, raw


def batch_ingestion(url: str, key: str, ids: list[str], *, run: int, batches: int) -> float:
    """Events/s through POST /api/v1/events/batch, batches of 500 events of the members with
    these host ids, full pipeline on."""

    def post(batch: int) -> int:
        rng = random.Random(run * 100_000 + batch)
        events = [
            {
                "external_id": rng.choice(ids),
                "action": "purchase",
                "idempotency_key": f"bi-{RUN}-{run}-{batch}-{i}",
                "attributes": {"amount": str(rng.randint(100, 50000) / 100)},
            }
            for i in range(500)
        ]
        answer = Client(url, key, timeout=600).post("/api/v1/events/batch", {"events": events})
        return json.loads(ok(answer))["succeeded"]

    started = time.monotonic()
    with ThreadPoolExecutor(BATCH_CLIENTS) as pool:
        done = sum(pool.map(post, range(batches)))
    return done / (time.monotonic() - started)


def raw_limit(
    connections: list, member_ids: list[int], action_id: int, *, run: int, batches: int
) -> float:
    """Events/s of the same rows (event, two ledger entries, a lot, balance upsert) written by
    plain psycopg COPY in batches of 500, for these members: the batches shared among the
    autocommit connections, which write at once, as batch ingestion's clients post."""
    started = time.monotonic()
    with ThreadPoolExecutor(len(connections)) as pool:
        written = sum(
            pool.map(
                lambda index: _raw_batches(
                    connections[index],
                    member_ids,
                    action_id,
                    tag=f"{run}-{index}",
                    batches=len(range(index, batches, len(connections))),
                ),
                range(len(connections)),
            )
        )
    return written / (time.monotonic() - started)


def _raw_batches(conn, member_ids: list[int], action_id: int, *, tag: str, batches: int) -> int:
    """Write ``batches`` batches of 500 events' rows on one connection; returns the events."""
    rng = random.Random(tag)
    for _ in range(batches):
        rows = [(rng.choice(member_ids), rng.randint(1, 500)) for _ in range(500)]
        with conn.transaction():
            event_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT nextval(pg_get_serial_sequence('loyalty_event', 'id')) FROM generate_series(1, 500)"
                )
            ]
            with conn.cursor().copy(
                "COPY loyalty_event (id, idempotency_key, request_hash, member_id, action_id, action_code, "
                "occurred_at, received_at, attributes, status, reason, growth, points, outcome) FROM STDIN"
            ) as copy:
                for event_id, (member_id, points) in zip(event_ids, rows, strict=True):
                    copy.write_row(
                        (
                            event_id,
                            f"raw-{RUN}-{tag}-{event_id}",
                            "",
                            member_id,
                            action_id,
                            "purchase",
                            "now",
                            "now",
                            "{}",
                            "credited",
                            "",
                            10,
                            points,
                            "{}",
                        )
                    )
            entry_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT nextval(pg_get_serial_sequence('loyalty_ledgerentry', 'id')) "
                    "FROM generate_series(1, 1000)"
                )
            ]
            entries = []
            for index, (event_id, (member_id, points)) in enumerate(
                zip(event_ids, rows, strict=True)
            ):
                for offset, (currency, amount) in enumerate((("growth", 10), ("points", points))):
                    entries.append(
                        (
                            entry_ids[2 * index + offset],
                            member_id,
                            currency,
                            amount,
                            event_id,
                        )
                    )
            with conn.cursor().copy(
                "COPY loyalty_ledgerentry (id, member_id, currency, kind, amount, pending, source_type, "
                "source_id, event_id, reason, effective_at, created_at) FROM STDIN"
            ) as copy:
                for entry_id, member_id, currency, amount, event_id in entries:
                    copy.write_row(
                        (
                            entry_id,
                            member_id,
                            currency,
                            "earn",
                            amount,
                            False,
                            "event",
                            str(event_id),
                            event_id,
                            "",
                            "now",
                            "now",
                        )
                    )
            # The points' lots, as the engine opens them.
            with conn.cursor().copy(
                "COPY loyalty_pointlot (member_id, entry_id, event_id, amount, remaining, pending, "
                "created_at) FROM STDIN"
            ) as copy:
                for entry_id, member_id, currency, amount, event_id in entries:
                    if currency == "points":
                        copy.write_row(
                            (member_id, entry_id, event_id, amount, amount, False, "now")
                        )
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS delta (member_id bigint, growth bigint, points bigint) ON COMMIT DELETE ROWS"
            )
            conn.execute("TRUNCATE delta")
            with conn.cursor().copy("COPY delta FROM STDIN") as copy:
                for member_id, points in rows:
                    copy.write_row((member_id, 10, points))
            # The standings locked in member order first, as the engine locks them: two
            # writers at once never wait for each other in a cycle.
            conn.execute(
                "SELECT 1 FROM loyalty_memberstanding WHERE member_id IN (SELECT member_id FROM delta) "
                "ORDER BY member_id FOR UPDATE"
            )
            conn.execute(
                "UPDATE loyalty_memberstanding s SET growth = s.growth + d.growth, points = s.points + d.points, "
                "points_earned = s.points_earned + d.points FROM (SELECT member_id, sum(growth) growth, "
                "sum(points) points FROM delta GROUP BY member_id ORDER BY member_id) d WHERE s.member_id = d.member_id"
            )
    return batches * 500


def single_events(
    url: str, key: str, *, requests: int, clients: int = 8
) -> tuple[list[float], list[float]]:
    """Requests/s and latencies of POST /api/v1/events with concurrent clients."""
    from accounts.models import Member

    ids = list(
        Member.objects.filter(external_id__startswith="bench-").values_list(
            "external_id", flat=True
        )[:200_000]
    )
    rates, latencies = [], []
    for run in range(3):
        local = threading.local()

        def post(i: int, run: int = run, local: threading.local = local) -> float:
            if not hasattr(local, "client"):
                local.client = Client(url, key)
            rng = random.Random(run * 1_000_000 + i)
            body = {
                "external_id": rng.choice(ids),
                "action": "purchase",
                "idempotency_key": f"se-{RUN}-{run}-{i}",
                "attributes": {"amount": "42.00"},
            }
            started = time.monotonic()
            ok(local.client.post("/api/v1/events", body))
            return (time.monotonic() - started) * 1000

        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            run_latencies = list(pool.map(post, range(requests)))
        rates.append(requests / (time.monotonic() - started))
        latencies.extend(run_latencies)
    return rates, latencies


def leaderboard_latencies(*, samples: int) -> tuple[list[float], list[float], float]:
    """p50/p95 of top-10 and of a member's rank with neighbours, in-process through the store."""
    from loyalty.models import Leaderboard, LeaderboardScore
    from loyalty.periods import LIFETIME_START
    from loyalty.scores.counting import store as chosen_store
    from loyalty.scores.redis_store import one_look

    store = chosen_store()

    board = Leaderboard.objects.get(code="bench-growth")
    member_ids = list(
        LeaderboardScore.objects.filter(leaderboard=board).values_list("member_id", flat=True)[
            :100_000
        ]
    )
    # The first read of a Redis store fills its set from the database; not a steady-state read.
    started = time.monotonic()
    store.count(board=board, period=LIFETIME_START)
    fill_ms = (time.monotonic() - started) * 1000
    rng = random.Random(7)
    top, around = [], []
    for _ in range(samples):
        started = time.monotonic()
        store.top(board=board, period=LIFETIME_START, limit=10)
        top.append((time.monotonic() - started) * 1000)
        member_id = rng.choice(member_ids)
        started = time.monotonic()
        with one_look():  # as the leaderboard view reads them
            store.rank(board=board, period=LIFETIME_START, member_id=member_id)
            store.around(board=board, period=LIFETIME_START, member_id=member_id, size=2)
        around.append((time.monotonic() - started) * 1000)
    return top, around, fill_ms


def redemptions(
    url: str, key: str, *, members: int, clients: int = 16
) -> tuple[list[float], int, int, int]:
    """Redemptions/s with concurrent clients on a stocked reward; oversells, double charges,
    and the requests sent (each run sends one per member, twice the stock)."""
    from django.db.models import CharField
    from django.db.models.functions import Cast

    from accounts.models import Member
    from loyalty.models import EntryKind, LedgerEntry
    from rewards.models import Redemption, Reward

    stock = members // 2
    reward, _ = Reward.objects.update_or_create(
        code="bench-gift",
        defaults={"name": "Bench gift", "kind": "digital", "cost_points": 1, "stock": stock},
    )
    Reward.objects.filter(pk=reward.pk).update(stock=stock, redeemed_count=0)
    ids = list(
        Member.objects.filter(
            external_id__startswith="bench-", standing__points__gte=10
        ).values_list("external_id", flat=True)[:members]
    )
    runs, oversold = [], 0
    for run in range(3):
        Reward.objects.filter(pk=reward.pk).update(stock=stock)
        local = threading.local()

        def redeem(i: int, run: int = run, local: threading.local = local) -> tuple[int, float]:
            if not hasattr(local, "client"):
                local.client = Client(url, key)
            body = {
                "external_id": ids[i % len(ids)],
                "reward": "bench-gift",
                "idempotency_key": f"rd-{RUN}-{run}-{i}",
            }
            status, _ = local.client.post("/api/v1/redemptions", body)
            return status, time.monotonic()

        # Twice as many requests as stock: the late ones must be refused (out of stock). The rate
        # is of redemptions while the reward was stocked: made / time to the last one made.
        started = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(redeem, range(len(ids))))
        made = [at for status, at in answers if status == 201]
        runs.append(len(made) / (max(made) - started) if made else 0.0)
        oversold += max(
            Redemption.objects.filter(
                reward=reward, idempotency_key__startswith=f"rd-{RUN}-{run}-"
            ).count()
            - stock,
            0,
        )
    made = Redemption.objects.filter(reward=reward).count()
    charges = LedgerEntry.objects.filter(
        kind=EntryKind.SPEND,
        source_type="redemption",
        # As a subquery: reused data holds more redemptions than a statement takes parameters.
        source_id__in=Redemption.objects.filter(reward=reward).values_list(
            Cast("pk", output_field=CharField()), flat=True
        ),
    ).count()
    return runs, oversold, charges - made, 3 * len(ids)


def member_summary(url: str, key: str, *, samples: int) -> list[float]:
    from bench.generate import HEAVY_MEMBER

    latencies = []
    client = Client(url, key)
    for _ in range(samples):
        started = time.monotonic()
        ok(client.get(f"/api/v1/members/{HEAVY_MEMBER}"))
        latencies.append((time.monotonic() - started) * 1000)
    return latencies


def reconciliation() -> tuple[list[float], float, int, bool]:
    """Seconds for ``verify_ledger`` over everything, and its own peak memory, as it reports it
    (its own high-water mark: the child's ``ru_maxrss`` would count this process's memory too)."""
    from loyalty.models import LedgerEntry

    entries = LedgerEntry.objects.count()
    runs, peaks, consistent = [], [], True
    for _ in range(3):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "manage.py", "verify_ledger"],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
        )
        runs.append(time.monotonic() - started)
        consistent = consistent and done.returncode == 0
        if found := re.search(r"peak memory (\d+) MB", done.stdout):
            peaks.append(float(found[1]))
    return runs, max(peaks, default=float("nan")), entries, consistent


# --- The table --------------------------------------------------------------------------------

FIGURES = [
    "batch",
    "single",
    "redemptions",
    "summary",
    "leaderboards",
    "verify",
    "console",
    "simulation",
    "member_center",
    "referrals",
]


def simulation() -> tuple[float, dict]:
    """Seconds for ``simulate_program`` to replay the whole history and compare the last 30
    days under the live program, and what it answered (its events, its peak memory)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", "simulate_program", "--since", "30d", "--json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.monotonic() - started, json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["smoke", "small", "medium", "large"], default="small")
    parser.add_argument("--reuse", action="store_true", help="Keep the data of the last run.")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=FIGURES,
        default=FIGURES,
        metavar="FIGURE",
        help=f"Measure only these figures (of: {', '.join(FIGURES)}).",
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="Generate the data and measure nothing."
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))

    def log(message: str) -> None:
        print(message, flush=True)

    ensure_database()
    if args.reuse:
        import django

        django.setup()
    else:
        setup(args.size, log)
    if args.generate_only:
        return 0
    smoke = args.size == "smoke"
    only = set(args.only)
    key = api_key()
    figures: list[Figure] = []
    gauges = [cpu_gauge()]
    log("Measuring…")
    if only & {"batch", "single", "redemptions", "summary", "referrals"}:
        with server() as (url, server_pid):
            cpu = CpuSplit(server_pid)
            if "batch" in only:
                batch, raw = batch_and_raw(url, key, batches=2 if smoke else 6)
                ratio = statistics.median(batch) / statistics.median(raw)
                turns = [b / r for b, r in zip(batch, raw, strict=True)]
                figures.append(
                    Figure(
                        "batch ingestion, full pipeline",
                        "events/s",
                        batch,
                        "≥ 3,000 and ≥ 0.25 × raw",
                        statistics.median(batch) >= 3000 and ratio >= 0.25,
                        f"{ratio:.3f} × raw (each turn {min(turns):.2f}–{max(turns):.2f})",
                    )
                )
                figures.append(Figure("raw limit (COPY, same rows)", "events/s", raw, "—", None))
            if "single" in only:
                with cpu.measuring() as spent:
                    rates, latencies = single_events(url, key, requests=80 if smoke else 800)
                p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
                figures.append(
                    Figure(
                        "single events, 8 clients",
                        "requests/s",
                        rates,
                        "≥ 400, p99 ≤ 50 ms",
                        statistics.median(rates) >= 400 and p99 <= 50,
                        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
                        + CpuSplit.note(spent, len(latencies)),
                    )
                )
            if "redemptions" in only:
                with cpu.measuring() as spent:
                    runs, oversold, double, sent = redemptions(
                        url, key, members=40 if smoke else 2000
                    )
                figures.append(
                    Figure(
                        "redemptions, 16 clients",
                        "redemptions/s",
                        runs,
                        "≥ 200, 0 oversells, 0 double charges",
                        statistics.median(runs) >= 200 and oversold == 0 and double == 0,
                        f"oversells {oversold}, double charges {double}"
                        + CpuSplit.note(spent, sent),
                    )
                )
            if "referrals" in only:
                from bench.referrals import referral_flows

                with cpu.measuring() as spent:
                    rates, took, unqualified, doubled = referral_flows(
                        url, key, friends=40 if smoke else 400
                    )
                figures.append(
                    Figure(
                        "referrals: register, attribute, qualify, both credited; 8 clients",
                        "referrals/s",
                        rates,
                        "≥ 25, each credited once",
                        statistics.median(rates) >= 25 and unqualified == 0 and doubled == 0,
                        f"flow p50 {1000 * percentile(took, 0.5):.0f} ms, p99 "
                        f"{1000 * percentile(took, 0.99):.0f} ms; not credited {unqualified}, "
                        f"credited twice {doubled}" + CpuSplit.note(spent, 3 * len(took)),
                    )
                )
            if "summary" in only:
                summary = member_summary(url, key, samples=30 if smoke else 200)
                figures.append(
                    Figure(
                        "member summary (heavy member)",
                        "ms p95",
                        [percentile(summary, 0.95)],
                        "p95 ≤ 20 ms",
                        percentile(summary, 0.95) <= 20,
                        f"p50 {percentile(summary, 0.5):.1f} ms",
                    )
                )
    if "leaderboards" in only:
        from loyalty.models import LeaderboardScore

        ranked = LeaderboardScore.objects.filter(leaderboard__code="bench-growth").count()
        top, around, fill_ms = leaderboard_latencies(samples=30 if smoke else 200)
        from loyalty.scores.counting import store as chosen_store

        store = chosen_store()

        kind = type(store).__name__.removesuffix("LeaderboardStore").lower()
        first = f", first read (fill) {fill_ms:,.0f} ms" if kind == "redis" else ""
        figures.append(
            Figure(
                f"leaderboard top-10 ({ranked:,} ranked)",
                "ms p95",
                [percentile(top, 0.95)],
                "p95 ≤ 5 ms (1M)",
                percentile(top, 0.95) <= 5,
                f"p50 {percentile(top, 0.5):.2f} ms, {kind} store{first}",
            )
        )
        figures.append(
            Figure(
                f"rank with neighbours ({ranked:,} ranked)",
                "ms p95",
                [percentile(around, 0.95)],
                "p95 ≤ 10 ms (1M)",
                percentile(around, 0.95) <= 10,
                f"p50 {percentile(around, 0.5):.2f} ms, {kind} store",
            )
        )
    if "verify" in only:
        runs, peak, entries, consistent = reconciliation()
        per_million = statistics.median(runs) / max(entries, 1) * 1_000_000
        figures.append(
            Figure(
                f"verify_ledger ({entries:,} entries)",
                "s",
                runs,
                "≤ 60 s per 5M entries, ≤ 500 MB",
                per_million * 5 <= 60 and peak <= 500 and consistent,
                f"{per_million:.1f} s per 1M entries, peak {peak:.0f} MB, "
                f"books {'consistent' if consistent else 'MISMATCH'}",
            )
        )
    if "console" in only:
        from bench import console

        rebuilt = console.prepare()
        nightly, per_day = console.nightly_runs(runs=1 if smoke else 3, tag=RUN)
        figures.append(
            Figure(
                f"console nightly job ({per_day:,} events a day)",
                "s",
                nightly,
                "≤ 60 s",
                statistics.median(nightly) <= 60,
                f"rebuild from scratch {rebuilt:.1f} s",
            )
        )
        pages = console.page_times(samples=5 if smoke else 20)
        slowest = max(pages, key=lambda name: console.p95(pages[name]))
        figures.append(
            Figure(
                "console pages, server time (slowest page)",
                "ms p95",
                [console.p95(pages[slowest])],
                "≤ 500 ms each",
                all(console.p95(runs) <= 500 for runs in pages.values()),
                ", ".join(f"{name} {console.p95(runs):.0f}" for name, runs in pages.items()),
            )
        )
        first_page, counted, size = console.segment_times(key, samples=5 if smoke else 20)
        figures.append(
            Figure(
                f"segment members, first page of 100 ({size:,} members)",
                "ms p95",
                [console.p95(first_page)],
                "—",
                None,
                f"p50 {console.median(first_page):.0f} ms; count p95 {console.p95(counted):.0f} ms",
            )
        )
    if "member_center" in only:
        from bench import console, member_center
        from loyalty.scores import counting

        times, weights = member_center.page_times(samples=5 if smoke else 50)
        slowest = max(times, key=lambda name: console.p95(times[name]))
        heaviest = max(weights.values())
        figures.append(
            Figure(
                "member center pages, server time (slowest page)",
                "ms p95",
                [console.p95(times[slowest])],
                "≤ 50 ms each, ≤ 100 KB before images",
                all(console.p95(runs) <= 50 for runs in times.values()) and heaviest <= 100_000,
                ", ".join(f"{name} {console.p95(runs):.0f}" for name, runs in times.items())
                + f"; heaviest page {heaviest / 1000:.0f} KB; leaderboards from the "
                + type(counting.store()).__name__.removesuffix("LeaderboardStore").lower()
                + " store",
            )
        )
    if "simulation" in only:
        seconds, answer = simulation()
        replayed = answer["replayed"]["events"] + answer["replayed"]["reversals"]
        per_million = seconds / max(replayed, 1) * 1_000_000
        figures.append(
            Figure(
                f"what-if replay ({replayed:,} events)",
                "s",
                [seconds],
                "≤ 300 s per 1M events, ≤ 500 MB",
                per_million <= 300 and answer["peak_memory_mb"] <= 500,
                f"{replayed / seconds:,.0f} events/s, peak {answer['peak_memory_mb']} MB, "
                f"{os.cpu_count()} cores",
            )
        )
    gauges.append(cpu_gauge())
    print()
    print(
        f"Machine: {os.cpu_count()} cores; CPU gauge (a fixed Python loop) "
        f"{gauges[0]:.0f} ms before measuring, {gauges[1]:.0f} ms after (lower is faster)."
    )
    print(f"{'figure':44} {'median':>12} {'spread':>19}  {'target':38} result  notes")
    for f in figures:
        spread = f"{min(f.runs):,.1f}–{max(f.runs):,.1f}" if len(f.runs) > 1 else "—"
        result = "—" if f.passed is None else ("pass" if f.passed else "FAIL")
        print(
            f"{f.name:44} {f.median:>8,.1f} {f.unit:<3} {spread:>19}  {f.target:38} {result:6}  {f.note}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
