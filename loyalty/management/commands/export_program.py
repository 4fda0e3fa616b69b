import json
import sys

import yaml
from django.core.management.base import BaseCommand
from django.core.serializers.json import DjangoJSONEncoder

from loyalty.program.program_file import program_export


class Command(BaseCommand):
    help = "Write the whole program (settings, actions, rules, tiers, segments, gamification, key actions, gifts, the rewards catalog) as YAML or JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args, format: str, output: str | None, **options) -> None:
        data = json.loads(json.dumps(program_export(), cls=DjangoJSONEncoder))
        if format == "json":
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stderr.write(f"Program written to {output}")
        else:
            sys.stdout.write(text)
