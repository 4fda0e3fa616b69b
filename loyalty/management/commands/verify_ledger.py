import resource
import sys
import time

from django.core.management.base import BaseCommand

from loyalty.ledger.reconciliation import verify_ledger


class Command(BaseCommand):
    help = (
        "Prove that every member's cached balances equal their ledger sums and that point lots "
        "are consistent. Exits 1 with a report on any mismatch."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000)

    def handle(self, *args, chunk_size: int, **options) -> None:
        started = time.monotonic()
        report = verify_ledger(chunk_size=chunk_size)
        peak_mb = _peak_memory_mb()
        took = f"in {time.monotonic() - started:.1f} s, peak memory {peak_mb:.0f} MB"
        owed = (
            f"Open shortfalls: {report.points_owed} points owed by {report.members_owing} "
            "member(s), repaid first by their next credits."
        )
        if report.ok:
            self.stdout.write(
                f"OK: {report.members} members, {report.entries} ledger entries, no mismatch "
                f"({took})."
            )
            self.stdout.write(owed)
            return
        self.stderr.write(owed)
        self.stderr.write(
            f"MISMATCH: {len(report.mismatches)} problem(s) over {report.members} members:"
        )
        for m in report.mismatches:
            self.stderr.write(
                f"  member {m['member_id']}: {m['check']}: cached {m['cached']}, ledger {m['actual']}"
            )
        sys.exit(1)


def _peak_memory_mb() -> float:
    """Peak memory of this program, for monitoring and benchmarks. Linux's ``VmHWM`` is the
    high-water mark of this program's own memory; ``ru_maxrss`` would also count what the
    process that started it held before ``exec`` (a benchmark's gigabyte, say)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kilobytes
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
