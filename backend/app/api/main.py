from fastapi import APIRouter

from app.api.routes import health, home, recipes, users

api_router = APIRouter()
api_router.include_router(home.router)
api_router.include_router(recipes.router)
api_router.include_router(users.router)
api_router.include_router(health.router)
