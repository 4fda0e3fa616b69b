"""Failing neighbours, against the real web server: a database that stops answering costs a
request seconds and a 503 with Retry-After, not minutes; the embedded SQLite default holds
concurrent writers without a 500."""

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.run import free_port, served_env

ROOT = Path(__file__).resolve().parent.parent


def request(port: int, method: str, path: str, *, key: str = "", body=None, timeout=60):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@contextmanager
def serving(env: dict[str, str], port: int):
    server = subprocess.Popen([sys.executable, "-m", "config.serve"], cwd=ROOT, env=env)
    try:
        for _ in range(150):
            try:
                request(port, "GET", "/api/", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not answer")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def silent_server():
    """A TCP listener that accepts connections and never says a word: a host behind a network
    partition, or a paused server, as a client sees it. Yields its port and the connections
    it accepted."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_database_that_stops_answering_gives_a_503_with_retry_after_not_a_stall():
    port = free_port()
    with silent_server() as (db_port, _):
        env = served_env(
            port,
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{db_port}/loyalty",
            DATABASE_CONNECT_TIMEOUT="2",
            WEB_CONCURRENCY="1",
        )
        with serving(env, port):
            # The key is checked in the database, which never answers.
            status, headers, body = request(
                port, "GET", "/api/v1/members", key="lk_abc_def", timeout=30
            )

    assert status == 503, body
    assert headers["Retry-After"] == "5"
    assert json.loads(body)["error"]["code"] == "service_unavailable"


def test_the_embedded_sqlite_default_holds_concurrent_writers(tmp_path):
    port = free_port()
    env = served_env(
        port, DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", WEB_CONCURRENCY="2"
    )
    env["WEB_THREADS"] = "4"
    setup = (
        "import django; django.setup();"
        "from accounts.scopes import SCOPES;"
        "from accounts.services import api_client_create;"
        "from tests.factories import make_rule;"
        "make_rule('purchase', points_per_occurrence=10);"
        "print(api_client_create(name='t', scopes=list(SCOPES))[1])"
    )
    run = {"cwd": ROOT, "env": {**env, "DJANGO_SETTINGS_MODULE": "config.settings"}}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, **run)
    key = subprocess.run(
        [sys.executable, "-c", setup], check=True, capture_output=True, text=True, **run
    ).stdout.strip()

    with serving(env, port):

        def post(index: int) -> int:
            body = {
                "external_id": f"m{index % 5}",
                "action": "purchase",
                "idempotency_key": f"k{index}",
            }
            return request(port, "POST", "/api/v1/events", key=key, body=body)[0]

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(post, range(40)))

    assert statuses == [201] * 40
