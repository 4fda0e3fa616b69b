import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from accounts.models import ApiClient
from accounts.scopes import SCOPES
from accounts.services import api_client_create, api_client_rotate_key
from loyalty.models import Action

DEMO_CLIENT = "demo"


class Command(BaseCommand):
    help = (
        "Set up and serve a working demo: migrate, create an operator login and an API client, "
        "load the demo program and catalog into an empty program, then serve on 127.0.0.1:8000. "
        "Safe to re-run: nothing an operator set up or changed is overwritten, and the demo API "
        "key stays valid unless --rotate-key is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Set up only; do not serve.")
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument(
            "--rotate-key",
            action="store_true",
            help="Issue the demo API client a new key (the old one stops working at once).",
        )
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="Give the operator login a new random password (or LOYALTY_ADMIN_PASSWORD).",
        )

    def handle(
        self,
        *args,
        no_serve: bool,
        addrport: str,
        rotate_key: bool,
        reset_password: bool,
        **options,
    ) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        self._operator(reset_password)
        self._api_client(addrport, rotate_key)
        self._demo_program()
        if no_serve:
            return
        self.stdout.write(f"Serving on http://{addrport}/ (Ctrl-C to stop).")
        call_command("runserver", addrport, use_reloader=False)

    def _operator(self, reset: bool) -> None:
        User = get_user_model()
        username = os.environ.get("LOYALTY_ADMIN_USERNAME", "admin")
        password = os.environ.get("LOYALTY_ADMIN_PASSWORD")
        user = User.objects.filter(username=username).first()
        if user is not None and not (password or reset):
            self.stdout.write(
                f"Operator login: {username} (exists; password unchanged; a lost password: "
                "re-run with --reset-password)"
            )
            return
        password = password or secrets.token_urlsafe(12)
        if user is None:
            User.objects.create_superuser(username=username, email="", password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        self.stdout.write(f"Operator login: {username} / {password}  (admin at /admin/)")

    def _api_client(self, addrport: str, rotate: bool) -> None:
        client = ApiClient.objects.filter(name=DEMO_CLIENT).first()
        if client is not None and not rotate:
            # A key is stored only as a hash: it cannot be shown again, and is kept working.
            self.stdout.write(
                f"API key ({DEMO_CLIENT}): {client} exists and still works; a key is shown "
                "only once. For a new one (the old one stops working): re-run with --rotate-key."
            )
            return
        if client is None:
            client, key = api_client_create(name=DEMO_CLIENT, scopes=list(SCOPES))
        else:
            key = api_client_rotate_key(client=client)
        self.stdout.write(f"API key ({DEMO_CLIENT}, all scopes): {key}")
        self.stdout.write(
            f"  try: curl -H 'Authorization: Bearer {key}' http://{addrport}/api/v1/members"
        )

    def _demo_program(self) -> None:
        if Action.objects.exists():
            # Loading the demo again would put its rules, tiers and catalog back over the
            # operator's edits: an explicit ``load_demo`` / ``load_demo_catalog`` does that.
            self.stdout.write(
                "Demo program: the program is already set up and left as it is "
                "(manage.py load_demo and load_demo_catalog reload the demo over it)."
            )
            return
        call_command("load_demo", stdout=self.stdout)
        if "load_demo_catalog" in get_commands():  # the rewards app, when installed
            call_command("load_demo_catalog", stdout=self.stdout)
