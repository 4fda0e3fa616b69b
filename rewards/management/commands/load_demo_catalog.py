from pathlib import Path

import yaml
from django.core.management.base import BaseCommand

from rewards.referrals.demo import load_demo_referrals
from rewards.services.catalog_file import catalog_load

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "fixtures" / "demo_catalog.yaml"


class Command(BaseCommand):
    help = (
        "Load the demo rewards catalog and referral settings (after the demo program, for its "
        "tiers and actions). Safe to re-run."
    )

    def handle(self, *args, **options) -> None:
        catalog = catalog_load(data=yaml.safe_load(DEMO_CATALOG.read_text()))
        referrals = load_demo_referrals()
        if options["verbosity"]:
            self.stdout.write(f"Demo catalog: {catalog}")
            self.stdout.write(f"Demo referrals: {referrals}")
