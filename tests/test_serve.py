"""The web server (``python -m config.serve``): its settings from the environment, and the real
server answering the API and the admin's static files over HTTP."""

import http.client
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.run import free_port, served_env
from config.serve import server_options

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_are_cores_plus_one_processes_of_two_threads_on_port_8000():
    options = server_options({}, cores=2)

    assert options["workers"] == 3
    assert options["blocking_threads"] == 2
    assert (options["address"], options["port"]) == ("0.0.0.0", 8000)
    assert options["interface"].value == "wsgi"


def test_the_environment_sets_processes_threads_address_and_log_level():
    options = server_options(
        {"WEB_CONCURRENCY": "5", "WEB_THREADS": "4", "BIND": "[::1]:9100", "LOG_LEVEL": "ERROR"},
        cores=2,
    )

    assert (options["workers"], options["blocking_threads"]) == (5, 4)
    assert (options["address"], options["port"]) == ("::1", 9100)
    assert options["log_level"].value == "error"


def test_a_unix_bind_serves_on_a_socket():
    options = server_options({"BIND": "unix:/run/loyalty.sock"}, cores=2)

    assert options["uds"] == Path("/run/loyalty.sock")
    assert "port" not in options


@pytest.mark.parametrize("bind", ["8000", "localhost", "localhost:http"])
def test_a_bind_without_host_and_port_is_refused(bind):
    with pytest.raises(ValueError, match="BIND"):
        server_options({"BIND": bind}, cores=2)


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_server_answers_the_api_and_the_admins_static_files(tmp_path):
    port = free_port()
    env = served_env(port, STATIC_ROOT=str(tmp_path / "static"), WEB_CONCURRENCY="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = subprocess.Popen([sys.executable, "-m", "config.serve"], cwd=ROOT, env=env)
    try:
        for _ in range(100):
            try:
                status, body = _get(port, "/api/v1/members")
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer")

        assert status == 401
        assert b'"not_authenticated"' in body
        status, body = _get(port, "/static/admin/css/base.css")
        assert status == 200
        assert body == (tmp_path / "static" / "admin" / "css" / "base.css").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)
