import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.models import ApiClient
from accounts.scopes import SCOPES
from accounts.services import api_client_create, api_client_rotate_key

DEMO_CLIENT = "demo"


class Command(BaseCommand):
    help = (
        "Set up and serve a working demo: migrate, create an operator login and an API client, "
        "load the demo program, then serve on 127.0.0.1:8000. Safe to re-run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Set up only; do not serve.")
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args, no_serve: bool, addrport: str, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        self._operator()
        self._api_client(addrport)
        self._demo_program()
        if no_serve:
            return
        self.stdout.write(f"Serving on http://{addrport}/ (Ctrl-C to stop).")
        call_command("runserver", addrport, use_reloader=False)

    def _operator(self) -> None:
        User = get_user_model()
        username = os.environ.get("LOYALTY_ADMIN_USERNAME", "admin")
        password = os.environ.get("LOYALTY_ADMIN_PASSWORD")
        user = User.objects.filter(username=username).first()
        if user is not None and not password:
            self.stdout.write(f"Operator login: {username} (exists; password unchanged)")
            return
        password = password or secrets.token_urlsafe(12)
        if user is None:
            User.objects.create_superuser(username=username, email="", password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(f"Operator login: {username} / {password}  (admin at /admin/)")

    def _api_client(self, addrport: str) -> None:
        # The demo client's key is re-issued on every run: a key is only ever shown once.
        client = ApiClient.objects.filter(name=DEMO_CLIENT).first()
        if client is None:
            client, key = api_client_create(name=DEMO_CLIENT, scopes=list(SCOPES))
        else:
            key = api_client_rotate_key(client=client)
        self.stdout.write(f"API key ({DEMO_CLIENT}, all scopes): {key}")
        self.stdout.write(
            f"  try: curl -H 'Authorization: Bearer {key}' http://{addrport}/api/v1/members"
        )

    def _demo_program(self) -> None:
        from django.apps import apps

        if apps.is_installed("loyalty"):
            from django.core.management import get_commands

            commands = get_commands()
            for name in ("load_demo", "load_demo_catalog"):
                if name in commands:
                    call_command(name, stdout=self.stdout)
