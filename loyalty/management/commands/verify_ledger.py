import sys

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
        report = verify_ledger(chunk_size=chunk_size)
        if report.ok:
            self.stdout.write(
                f"OK: {report.members} members, {report.entries} ledger entries, no mismatch."
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
