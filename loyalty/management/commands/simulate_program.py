import json
import resource
import sys
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from loyalty.models import ProgramDraft
from loyalty.simulation.runs import comparison, simulation_new, simulation_run

UNITS = {"d": "days", "w": "weeks", "h": "hours"}


def _moment(text: str, *, now: datetime) -> datetime:
    """``30d``, ``12w``, ``6h`` before now, or a date or time (ISO 8601)."""
    if text[:-1].isdigit() and text[-1:] in UNITS:
        return now - timedelta(**{UNITS[text[-1]]: int(text[:-1])})
    moment = parse_datetime(text) or parse_datetime(f"{text}T00:00:00")
    if moment is None:
        raise CommandError(f"Not a period: {text!r} (write 30d, 12w, or a date like 2026-11-01).")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Replay a period's history under a draft (its id or name), a program file, or the live "
        "program (none given), and compare it with what happened. Nothing live is changed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("program", nargs="?", help="A draft's id or name, or a program file.")
        parser.add_argument("--since", default="30d", help="Period start: 30d, 12w or a date.")
        parser.add_argument("--until", default=None, help="Period end (default: now).")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the results as JSON."
        )

    def handle(self, *args, program, since, until, as_json: bool, **options) -> None:
        now = timezone.now()
        start = _moment(since, now=now)
        end = _moment(until, now=now) if until else now
        if end <= start:
            raise CommandError("The period must end after it starts.")
        draft, definition, label = None, None, ""
        if program and Path(program).is_file():
            try:
                definition = yaml.safe_load(Path(program).read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                raise CommandError(f"Cannot read {program}: {error}") from error
            label = program
        elif program:
            drafts = ProgramDraft.objects.all()
            found = drafts.filter(pk=program).first() if program.isdigit() else None
            draft = found or drafts.filter(name=program).order_by("-pk").first()
            if draft is None:
                raise CommandError(f"No draft or file named {program!r}.")
        run = simulation_run(
            simulation_new(start=start, end=end, draft=draft, definition=definition, label=label)
        )
        if run.status != "done":
            raise CommandError(f"The simulation {run.status}: {run.error}")
        # The highest of this process's and its replay workers' own peaks.
        peak = max(
            resource.getrusage(who).ru_maxrss
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        peak_mb = round(peak / 1024)
        if as_json:
            answer = {"run": run.pk, "seconds": run.seconds, "peak_memory_mb": peak_mb}
            answer.update(run.results)
            sys.stdout.write(json.dumps(answer, indent=2) + "\n")
            return
        self.stdout.write(
            f"{run} — {run.done:,} replayed in {run.seconds} s, peak memory {peak_mb} MB"
        )
        for section in comparison(run.results):
            self.stdout.write(f"\n{section['title']}")
            for row in section["rows"]:
                self.stdout.write(
                    f"  {row['label']:<32} {row['actual']:>14,} {row['simulated']:>14,} "
                    f"{row['change']:>+14,}"
                )
