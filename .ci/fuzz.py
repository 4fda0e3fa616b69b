"""The API fuzzing step of CI: schemathesis against the real server on PostgreSQL.

Sets up a fresh database with the demo program and catalog, starts ``python -m config.serve``,
and runs schemathesis from the served OpenAPI schema twice: with an API key holding every
scope, and with a member token. Fails on any 5xx, any response that breaks its documented
schema, and any status code the schema does not document. Bounded in time (``--max-time``).

    python .ci/fuzz.py [--seconds 120]
"""

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=120, help="Time budget of each run.")
    parser.add_argument(
        "--database",
        default=os.environ.get("CI_FUZZ_DATABASE_URL", "postgres://postgres@/loyalty_fuzz"),
    )
    args = parser.parse_args()

    from bench.run import free_port, served_env

    port = free_port()
    env = served_env(port, DATABASE_URL=args.database, WEB_CONCURRENCY="2")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    key, token = _prepare(env)
    server = subprocess.Popen([sys.executable, "-m", "config.serve"], cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/api/schema/")
        failed = False
        for name, credential, selection in (
            # Member tokens open the /me endpoints only; keys open the others. The token goes
            # first: the key's run may erase its member, which ends the token.
            ("member token", token, ["--include-path-regex", "^/api/v1/me(/|$)"]),
            ("API key", key, ["--exclude-path-regex", "^/api/v1/me(/|$)"]),
        ):
            print(f"--- schemathesis with a {name} ---", flush=True)
            run = subprocess.run(
                [
                    str(Path(sys.executable).with_name("schemathesis")),
                    "run",
                    f"{base}/api/schema/",
                    "--url",
                    base,
                    "-H",
                    f"Authorization: Bearer {credential}",
                    "--checks",
                    CHECKS,
                    "--max-time",
                    str(args.seconds),
                    "--request-timeout",
                    "30",
                    # One worker: CPython 3.11's ast.parse, which hypothesis calls to describe
                    # strategies, is not safe across threads.
                    "--workers",
                    "1",
                    "--seed",
                    "1",
                    "--suppress-health-check",
                    "all",
                    *selection,
                ],
                cwd=ROOT,
            )
            failed = failed or run.returncode != 0
        return 1 if failed else 0
    finally:
        server.terminate()
        server.wait(timeout=30)


def _prepare(env: dict[str, str]) -> tuple[str, str]:
    """A fresh database with the demo program and catalog; an all-scopes key and a member
    token (printed by a child process, so this one stays free of Django)."""
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    subprocess.run(["dropdb", "-U", "postgres", "--if-exists", database], check=True)
    subprocess.run(["createdb", "-U", "postgres", database], check=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    setup = """
import django
django.setup()
from django.core.management import call_command
from accounts.models import Member
from accounts.scopes import SCOPES
from accounts.services import api_client_create, member_token_issue
call_command("load_demo", "--program-only", verbosity=0)
call_command("load_demo_catalog", verbosity=0)
client, key = api_client_create(name="fuzz", scopes=list(SCOPES))
member = Member.objects.create(external_id="fuzz-member", display_name="Fuzz")
print(key)
print(member_token_issue(member=member, client=client, ttl_seconds=24 * 3600).token)
"""
    out = subprocess.run(
        [sys.executable, "-c", setup],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[-2], out[-1]


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not answer at {url}")


if __name__ == "__main__":
    sys.exit(main())
