"""The demo storefront (``/demo/shop``): a product page with ``winback.js`` installed, so a
newcomer sees the whole journey in a minute. Served only when ``settings.demo_store`` is on,
which ``winback dev`` does; production never mounts it."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import SessionDep, SettingsDep, hash_key
from winback.retailers.demo import ensure_demo_store
from winback.retailers.publishable_keys import normalize_origin

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
    autoescape=select_autoescape(["html"]),
)
PRODUCTS = [
    {
        "id": "trail",
        "name": "Trail runner",
        "price": 89.9,
        "category": "shoes",
        "colour": "#2f6f4f",
    },
    {"id": "city", "name": "City sneaker", "price": 74.5, "category": "shoes", "colour": "#3b5b92"},
    {"id": "boot", "name": "Hiking boot", "price": 139.0, "category": "shoes", "colour": "#8a5a2b"},
]
SIZES = [38, 39, 40, 41, 42, 43, 44]

router = APIRouter(tags=["demo"], include_in_schema=False)


@router.get("/demo/shop", response_class=HTMLResponse)
async def demo_shop(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    idle: Annotated[int, Query(ge=1, le=3600, description="Seconds before idle.")] = 45,
    min_time: Annotated[int, Query(ge=0, le=600, description="Seconds before any nudge.")] = 3,
) -> HTMLResponse:
    """The demo product page, with the demo retailer's publishable key in its script tag;
    `?idle=` and `?min_time=` set the snippet's timings (to try idle without waiting long)."""
    here = normalize_origin(str(request.base_url))
    origins = sorted({here, normalize_origin(settings.public_base_url)})
    store = await ensure_demo_store(session, settings=settings, origins=origins, hash_key=hash_key)
    html = TEMPLATES.get_template("demo/shop.html").render(
        store=store,
        products=PRODUCTS,
        sizes=SIZES,
        api_base=here,
        idle=idle,
        min_time=min_time,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
