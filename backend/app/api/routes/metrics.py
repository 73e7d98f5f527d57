"""Prometheus' scrape target: every metric of every worker, in its text format.

Not for the public: keep the path off the public host (docs/operations.md).
"""

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from app.core.metrics import CONTENT_TYPE, Metrics

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False, response_class=Response)
async def metrics(request: Request) -> Response:
    exported: Metrics = request.app.state.metrics
    # On the event loop, where the requests are counted: this worker's figures up to now.
    exported.flush()
    # In multiprocess mode every worker's files are read: off the loop.
    return Response(await run_in_threadpool(exported.exposition), media_type=CONTENT_TYPE)
