"""CPU of the engine's own process per single event, through the whole WSGI handler
(middleware, DRF, the event flow), without the web server, PostgreSQL or the client's share.

A steadier measure than requests a second when comparing two versions of the code in turns on
a machine whose speed swings: run it from each checkout against its own benchmark data
(``python -m bench --size medium`` first), alternately, a few times.

    DATABASE_URL=postgres://postgres@/loyalty_bench python -m bench.cpu_per_event [--events 400]
"""

import argparse
import json
import time
import uuid

from bench.inprocess import engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--warm-up", type=int, default=100)
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:8]
    client, key, members = engine(f"cpu-{run_id}")
    members = members[1000:1400]

    def post(count: int, tag: str) -> float:
        started = time.process_time()
        for i in range(count):
            body = {
                "external_id": members[i % len(members)],
                "action": "purchase",
                "idempotency_key": f"cpu-{run_id}-{tag}-{i}",
                "attributes": {"amount": "120.00"},
            }
            response = client.post(
                "/api/v1/events",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {key}",
            )
            assert response.status_code == 201, response.content
        return (time.process_time() - started) / count * 1000

    post(args.warm_up, "warm")
    print(f"{post(args.events, 'measure'):.3f} ms of this process's CPU per single event")


if __name__ == "__main__":
    main()
