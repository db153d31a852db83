"""Liveness. (The API's Prometheus metrics are served on their own port: ``api/metrics.py``.)"""

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The API process is up (and its event loop answers)."""
    return Health(status="ok")
