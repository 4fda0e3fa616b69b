from pathlib import Path

import yaml
from django.core.management.base import BaseCommand

from rewards.services.catalog_file import catalog_load

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "fixtures" / "demo_catalog.yaml"


class Command(BaseCommand):
    help = "Load the demo rewards catalog (after the demo program, for its tiers). Safe to re-run."

    def handle(self, *args, **options) -> None:
        self.stdout.write(
            f"Demo catalog: {catalog_load(data=yaml.safe_load(DEMO_CATALOG.read_text()))}"
        )
