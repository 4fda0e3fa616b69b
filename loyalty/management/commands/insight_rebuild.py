from django.core.management.base import BaseCommand

from loyalty.insight.job import rebuild, refresh


class Command(BaseCommand):
    help = (
        "Rebuild the console's aggregates from the records (events, ledger, members, tiers, "
        "badges, quests, webhooks, redemptions). With --refresh, only the days changed since "
        "the last run, as the nightly job does."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--refresh",
            action="store_true",
            dest="only_changed",
            help="Only what changed since the last run.",
        )

    def handle(self, *args, only_changed: bool = False, **options) -> None:
        say = self.stdout.write if options["verbosity"] > 1 else None
        run = (refresh if only_changed else rebuild)(progress=say)
        self.stdout.write(
            f"Console figures as of {run.as_of}: {run.days} day(s) recomputed in "
            f"{run.seconds:.1f} s."
        )
