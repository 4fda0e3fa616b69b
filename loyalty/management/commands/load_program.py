from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from core.errors import InvalidInput
from loyalty.program.program_file import program_load
from loyalty.simulation.drafts import draft_new, draft_problems


class Command(BaseCommand):
    help = "Load a program file (YAML or JSON) idempotently; nothing is changed if it is invalid."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--draft",
            metavar="NAME",
            help="Keep the file as a program draft of this name instead of loading it live "
            "(checked as a publish would check it).",
        )

    def handle(self, *args, file: str, draft: str | None, **options) -> None:
        try:
            # YAML is a superset of JSON: one parser reads both.
            data = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        if draft:
            if problems := draft_problems(data):
                lines = "\n".join(f"  - {line}" for line in problems)
                raise CommandError(f"The program file is not valid.\n{lines}")
            made = draft_new(name=draft, definition=data)
            self.stdout.write(f"Draft {made.pk} ({made.name}) holds {file}; nothing live changed.")
            return
        try:
            report = program_load(data=data)
        except InvalidInput as error:
            lines = "\n".join(f"  - {line}" for line in error.details or [])
            raise CommandError(f"{error.message}\n{lines}") from error
        self.stdout.write(f"Loaded {file}: {report}")
