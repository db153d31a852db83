"""Database tables and the API models built on them (Base / Create / Public split)."""

from winback.models.cadence import CadenceVersion
from winback.models.cart import Cart, CartEvent
from winback.models.customer import Customer
from winback.models.discount import DiscountCode
from winback.models.message import Message, Suppression
from winback.models.retailer import ApiKey, Retailer
from winback.models.template import MessageTemplate

__all__ = [
    "ApiKey",
    "CadenceVersion",
    "Cart",
    "CartEvent",
    "Customer",
    "DiscountCode",
    "Message",
    "MessageTemplate",
    "Retailer",
    "Suppression",
]
