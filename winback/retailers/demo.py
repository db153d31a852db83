"""The demo store's tenant, for ``winback dev`` only: a retailer, its keys and an agent.

Made on the first visit to ``/demo/shop`` and found again afterwards. The secret keys are derived
from the admin token (HMAC), so the page can show them for the walkthrough's ``curl`` commands
without keeping them anywhere: only their hashes are stored, as for every other key.
"""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from winback.platform.settings import Settings
from winback.retailers.models import ApiKey, Retailer
from winback.retailers.publishable_keys import create_key, list_keys
from winback.tasks.agent_models import Agent

DEMO_RETAILER = "demo"
DEMO_AGENT = "demo_agent"


@dataclass
class DemoStore:
    retailer_id: str
    api_key: str
    agent_token: str
    publishable_key: str


def _derived(settings: Settings, label: str) -> str:
    seed = settings.admin_token.get_secret_value().encode()
    return hmac.new(seed, label.encode(), hashlib.sha256).hexdigest()[:32]


def demo_credentials(settings: Settings) -> tuple[str, str]:
    """The demo retailer's API key and its agent's token (the same on every start)."""
    api_key = f"wb_{DEMO_RETAILER}_{_derived(settings, 'api-key')}"
    return api_key, f"wba_{_derived(settings, 'agent-token')}"


async def ensure_demo_store(
    session: AsyncSession, *, settings: Settings, origins: list[str], hash_key: Callable[[str], str]
) -> DemoStore:
    """The demo tenant, created if missing; ``origins`` are where the demo page is served;
    ``hash_key`` is the API's key hash (passed in: the core does not import the API)."""
    api_key, agent_token = demo_credentials(settings)
    if await session.get(Retailer, DEMO_RETAILER) is None:
        session.add(
            Retailer(
                id=DEMO_RETAILER,
                name="Winback Demo Shoes",
                cart_url_template=settings.public_base_url.rstrip("/")
                + "/demo/shop?cart={cart_id}",
                webhook_secret=secrets.token_urlsafe(32),
            )
        )
        await session.flush()
    if (
        await session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(api_key)))
    ).first() is None:
        session.add(ApiKey(retailer_id=DEMO_RETAILER, key_hash=hash_key(api_key)))
    agent = (
        await session.exec(
            select(Agent).where(Agent.retailer_id == DEMO_RETAILER, Agent.agent_id == DEMO_AGENT)
        )
    ).first()
    if agent is None:
        session.add(
            Agent(
                retailer_id=DEMO_RETAILER,
                agent_id=DEMO_AGENT,
                name="Demo Agent",
                skills=[],
                queues=["default"],
                is_supervisor=True,
                token_hash=hash_key(agent_token),
            )
        )
    keys = await list_keys(session, retailer_id=DEMO_RETAILER)
    usable = next(
        (k for k in keys if k.expires_at is None and set(origins) <= set(k.allowed_origins)), None
    )
    if usable is None:
        usable = await create_key(
            session, retailer_id=DEMO_RETAILER, allowed_origins=sorted(set(origins)), name="demo"
        )
    await session.flush()
    return DemoStore(DEMO_RETAILER, api_key, agent_token, usable.key)
