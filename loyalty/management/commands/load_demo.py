from django.core.management.base import BaseCommand

from loyalty.demo import load_demo_program, simulate_members
from loyalty.insight.job import rebuild


class Command(BaseCommand):
    help = "Load the demo program and simulate members over recent weeks (once). Safe to re-run."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--members", type=int, default=200)
        parser.add_argument("--days", type=int, default=60)
        parser.add_argument("--program-only", action="store_true")

    def handle(self, *args, members: int, days: int, program_only: bool, **options) -> None:
        self.stdout.write(f"Demo program: {load_demo_program()}")
        if program_only:
            return
        self.stdout.write(f"Simulating {members} members over {days} days…")
        report = simulate_members(members=members, days=days)
        if report.skipped:
            self.stdout.write("Demo members: already simulated.")
        else:
            self.stdout.write(
                f"Demo members: {report.members} members, {report.events} events over {days} days."
            )
            run = rebuild()  # the console shows the history at once, not after the nightly job
            self.stdout.write(f"Console figures: up to {run.as_of}.")
