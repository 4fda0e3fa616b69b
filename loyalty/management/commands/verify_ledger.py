import resource
import sys
import time

from django.core.management.base import BaseCommand

from loyalty.services.reconciliation import verify_ledger


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
        # Peak memory of this process (Linux reports kilobytes), for monitoring and benchmarks.
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        took = f"in {time.monotonic() - started:.1f} s, peak memory {peak_mb:.0f} MB"
        if report.ok:
            self.stdout.write(
                f"OK: {report.members} members, {report.entries} ledger entries, no mismatch "
                f"({took})."
            )
            return
        self.stderr.write(
            f"MISMATCH: {len(report.mismatches)} problem(s) over {report.members} members:"
        )
        for m in report.mismatches:
            self.stderr.write(
                f"  member {m['member_id']}: {m['check']}: cached {m['cached']}, ledger {m['actual']}"
            )
        sys.exit(1)
