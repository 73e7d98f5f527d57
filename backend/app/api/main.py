"""Every route of the API, for `create_app` to serve."""

from starlette.routing import BaseRoute

from app.api.routes import health, home, login, metrics, recipes, users

ROUTERS = (home.router, recipes.router, users.router, login.router, health.router)


def api_routes(*, with_metrics: bool = True) -> list[BaseRoute]:
    """The routers' routes, to be registered on the app itself; /metrics last, unless
    METRICS_ENABLED is off.

    Since FastAPI 0.137, `include_router` keeps each included router as a node that every
    request resolves again, level by level, a cost measured in docs/performance.md. A route
    built by an `APIRouter` already carries its router's tags and responses, so the app can
    serve it directly.
    """
    routers = (*ROUTERS, metrics.router) if with_metrics else ROUTERS
    return [route for router in routers for route in router.routes]
