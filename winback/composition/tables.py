"""Every table of every domain, imported so that ``SQLModel.metadata`` knows the whole schema
(for creating it, and for Alembic to compare the models with the migrations)."""

from sqlmodel import SQLModel

from winback.carts.cadence_models import CadenceVersion
from winback.carts.discount_models import DiscountCode
from winback.carts.models import Cart, CartEvent
from winback.customers.consent_models import ConsentChange
from winback.customers.models import Customer
from winback.customers.privacy_models import PrivacyRequest
from winback.customers.signed_identity import IdentitySecret
from winback.feedback.models import (
    AlertRulesVersion,
    FeedbackAnswer,
    FeedbackCase,
    SurveyInvite,
)
from winback.integrations.cart_links import PlatformCartLink
from winback.integrations.connections import PlatformConnection
from winback.integrations.deliveries import WebhookDelivery
from winback.messaging.models import Message, Suppression
from winback.messaging.provider_event_models import ProviderEvent
from winback.messaging.template_models import MessageTemplate
from winback.retailers.models import ApiKey, Retailer
from winback.retailers.provider_settings import ProviderSettings
from winback.retailers.publishable_keys import PublishableKey
from winback.tasks.agent_models import Agent, Queue
from winback.tasks.models import Escalation, HumanTask
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
    IdentitySecret,
    Message,
    MessageTemplate,
    PlatformCartLink,
    PlatformConnection,
    PrivacyRequest,
    ProviderEvent,
    ProviderSettings,
    PublishableKey,
    Queue,
    Retailer,
    ScreenPop,
    Suppression,
    SurveyInvite,
    WebhookDelivery,
)
metadata = SQLModel.metadata
