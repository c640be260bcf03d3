"""`python -m recs_assets.serving`: run the recommendation API on 127.0.0.1:$RECS_API_PORT (default 8000)."""

from __future__ import annotations

import os

import uvicorn

from recs_assets.serving.api import create_app


def main() -> None:
    port = int(os.environ.get("RECS_API_PORT", "8000"))
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level=os.environ.get("RECS_API_LOG_LEVEL", "warning"))


if __name__ == "__main__":
    main()
