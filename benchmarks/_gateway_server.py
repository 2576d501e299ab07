"""Serve the reference gateway on loopback (uvicorn) until killed; print ``URL <base url>``.

python benchmarks/_gateway_server.py [--secret bench-secret-of-at-least-32-bytes-long]
"""

from __future__ import annotations

import argparse
import threading

from cachecore.testing import GatewayConfig, ReferenceGateway, serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", default="bench-secret-of-at-least-32-bytes-long")
    parser.add_argument(
        "--tcp-proto",
        action="store_true",
        help="bind with proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on connections",
    )
    args = parser.parse_args()
    if args.tcp_proto:
        import socket

        from cachecore.testing import _server

        def bind(host: str, port: int) -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            return sock

        _server.bind = bind
    gateway = ReferenceGateway(GatewayConfig(secret=args.secret, rate_limit=0))
    with serve(gateway) as url:
        print(f"URL {url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
