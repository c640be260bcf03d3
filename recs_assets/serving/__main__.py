"""`python -m recs_assets.serving`: run the recommendation API on 127.0.0.1:$RECS_API_PORT (default 8000).

Live events go to the broker at $RECS_BROKER_URL. Without one, `--embedded-broker` (what `make serve`
passes) starts the home's embedded broker for as long as the API runs (or joins the one already
running); without either, they go to the JSON-lines log in the home.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys

import uvicorn

from recs_assets.layout import HomeLayout
from recs_assets.serving.api import create_app
from recs_assets.settings import Settings
from recs_assets.streaming.embedded import embedded_broker


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m recs_assets.serving", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--embedded-broker", action="store_true",
        help="start the home's embedded broker (redis-server on loopback) when RECS_BROKER_URL is unset",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # uvicorn re-raises the SIGTERM it shut down on; as an exception it unwinds through the `with` below
    # (stopping the embedded broker) instead of ending the process on the spot.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    settings = Settings.from_env()
    with contextlib.ExitStack() as stack:
        if args.embedded_broker and settings.broker_url is None:
            url = stack.enter_context(embedded_broker(HomeLayout(settings.home).broker))
            settings = dataclasses.replace(settings, broker_url=url)
        print(f"recommendation API on http://127.0.0.1:{settings.api_port} (docs: /docs)", flush=True)
        print(f"live events: {settings.broker_url or HomeLayout(settings.home).live_events}", flush=True)
        uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.api_port, log_level=settings.api_log_level)


if __name__ == "__main__":
    main()
