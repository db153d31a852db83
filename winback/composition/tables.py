"""Every table of every domain, imported so that ``SQLModel.metadata`` knows the whole schema
(for creating it, and for Alembic to compare the models with the migrations)."""

from sqlmodel import SQLModel

from winback.carts.cadence_models import CadenceVersion
from winback.carts.discount_models import DiscountCode
from winback.carts.models import Cart, CartEvent
from winback.customers.consent_models import ConsentChange
from winback.customers.models import Customer
from winback.feedback.models import AlertRulesVersion, Escalation, FeedbackAnswer, FeedbackCase
from winback.messaging.models import Message, Suppression
from winback.messaging.provider_event_models import ProviderEvent
from winback.messaging.template_models import MessageTemplate
from winback.retailers.models import ApiKey, Retailer
from winback.retailers.provider_settings import ProviderSettings
from winback.tasks.agent_models import Agent, Queue
from winback.tasks.models import HumanTask
from winback.tasks.screen_pop_models import ScreenPop

TABLES = (
    Agent,
    AlertRulesVersion,
    ApiKey,
    CadenceVersion,
    Cart,
    CartEvent,
    ConsentChange,
    Customer,
    DiscountCode,
    Escalation,
    FeedbackAnswer,
    FeedbackCase,
    HumanTask,
    Message,
    MessageTemplate,
    ProviderEvent,
    ProviderSettings,
    Queue,
    Retailer,
    ScreenPop,
    Suppression,
)
metadata = SQLModel.metadata
