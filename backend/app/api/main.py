from fastapi import APIRouter

from app.api.errors import DATABASE_UNAVAILABLE_RESPONSE
from app.api.routes import health, home, recipes, users

api_router = APIRouter()
api_router.include_router(home.router, responses=DATABASE_UNAVAILABLE_RESPONSE)
api_router.include_router(recipes.router, responses=DATABASE_UNAVAILABLE_RESPONSE)
api_router.include_router(users.router, responses=DATABASE_UNAVAILABLE_RESPONSE)
api_router.include_router(health.router)
