"""A loopback stand-in for the gateway's ``/v1/invalidate``: answers 200 after 5 ms.

    python benchmarks/_slow_gateway.py [--delay 0.005] [--server uvicorn|hypercorn]

Binds 127.0.0.1 on an ephemeral port, prints ``URL <base url>`` and serves until
killed. ``hypercorn`` also speaks HTTP/2 over cleartext (prior knowledge), for
the HTTP/2 trial; ``uvicorn`` is HTTP/1.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from typing import Any


def make_app(delay: float) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await asyncio.sleep(delay)
        try:
            dep_id = json.loads(body).get("dep_id")
        except ValueError:
            dep_id = None
        payload = json.dumps({"dep_id": dep_id, "evicted": 0}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.005)
    parser.add_argument("--server", choices=["uvicorn", "hypercorn"], default="uvicorn")
    args = parser.parse_args()
    app = make_app(args.delay)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections
    # only when the listening socket says it is TCP; without it Nagle's algorithm
    # and delayed ACKs add ~40 ms to every response written in two parts.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if args.server == "uvicorn":
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=2048)
        server = uvicorn.Server(config)
        print(f"URL http://127.0.0.1:{port}", flush=True)
        server.run(sockets=[sock])
    else:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        sock.close()  # hypercorn binds by address
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "WARNING"
        config.backlog = 2048
        config.h2_max_concurrent_streams = 1000
        print(f"URL http://127.0.0.1:{port}", flush=True)
        asyncio.run(serve(app, config))
    sys.exit(0)


if __name__ == "__main__":
    main()
