"""`python -m recs_assets.serving`: run the recommendation API on 127.0.0.1:$RECS_API_PORT (default 8000)."""

from __future__ import annotations

import uvicorn

from recs_assets.serving.api import create_app
from recs_assets.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.api_port, log_level=settings.api_log_level)


if __name__ == "__main__":
    main()
