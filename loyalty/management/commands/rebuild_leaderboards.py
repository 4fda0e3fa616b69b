from django.core.management.base import BaseCommand

from loyalty.gamification.leaderboards import leaderboards_rebuild
from loyalty.models import Leaderboard


class Command(BaseCommand):
    help = "Recompute leaderboard scores from the ledger and the events (all boards, or the codes given)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("codes", nargs="*")

    def handle(self, *args, codes: list[str], **options) -> None:
        boards = Leaderboard.objects.filter(code__in=codes) if codes else Leaderboard.objects.all()
        rows = leaderboards_rebuild(boards=boards)
        self.stdout.write(f"Rebuilt {boards.count()} leaderboard(s): {rows} score row(s).")
