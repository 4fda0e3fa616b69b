from django.core.management.base import BaseCommand, CommandError

from accounts.scopes import SCOPES
from accounts.services import api_client_create
from core.errors import InvalidInput


class Command(BaseCommand):
    help = "Create an API client for a host app and print its key (shown only this once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            nargs="+",
            default=[],
            help=f"Scopes, space- or comma-separated; 'all' for every scope. Known: {', '.join(SCOPES)}",
        )

    def handle(self, *args, name: str, scopes: list[str], **options) -> None:
        wanted = [s for chunk in scopes for s in chunk.split(",") if s]
        if wanted == ["all"]:
            wanted = list(SCOPES)
        try:
            client, key = api_client_create(name=name, scopes=wanted)
        except InvalidInput as error:
            raise CommandError(error.message) from error
        self.stderr.write(
            f"Created API client {client.name} with scopes: {', '.join(client.scopes)}"
        )
        self.stdout.write(key)
