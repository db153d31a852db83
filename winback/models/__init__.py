"""Database tables and the API models built on them (Base / Create / Public split)."""

from winback.models.agent import Agent, Queue
from winback.models.cadence import CadenceVersion
from winback.models.cart import Cart, CartEvent
from winback.models.consent import ConsentChange
from winback.models.customer import Customer
from winback.models.discount import DiscountCode
from winback.models.feedback import (
    AlertRulesVersion,
    Escalation,
    FeedbackAnswer,
    FeedbackCase,
)
from winback.models.message import Message, Suppression
from winback.models.provider_event import ProviderEvent
from winback.models.provider_settings import ProviderSettings
from winback.models.retailer import ApiKey, Retailer
from winback.models.task import HumanTask
from winback.models.template import MessageTemplate

__all__ = [
    "Agent",
    "AlertRulesVersion",
    "ApiKey",
    "CadenceVersion",
    "Cart",
    "CartEvent",
    "ConsentChange",
    "Customer",
    "DiscountCode",
    "Escalation",
    "FeedbackAnswer",
    "FeedbackCase",
    "HumanTask",
    "Message",
    "MessageTemplate",
    "ProviderEvent",
    "ProviderSettings",
    "Queue",
    "Retailer",
    "Suppression",
]
