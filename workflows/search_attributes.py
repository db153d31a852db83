"""Custom search attributes that make carts findable in the Temporal UI."""

from temporalio.common import SearchAttributeKey

RETAILER = SearchAttributeKey.for_keyword("WinbackRetailer")
STAGE = SearchAttributeKey.for_keyword("WinbackStage")
CART_VALUE = SearchAttributeKey.for_float("WinbackCartValue")

ALL = (RETAILER, STAGE, CART_VALUE)
