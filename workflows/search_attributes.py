"""Custom search attributes that make carts, cases and tasks findable in the Temporal UI."""

from temporalio.common import SearchAttributeKey

RETAILER = SearchAttributeKey.for_keyword("WinbackRetailer")
STAGE = SearchAttributeKey.for_keyword("WinbackStage")
CART_VALUE = SearchAttributeKey.for_float("WinbackCartValue")
TASK_KIND = SearchAttributeKey.for_keyword("WinbackTaskKind")  # the open human task, if any
TASK_QUEUE = SearchAttributeKey.for_keyword("WinbackTaskQueue")
SEVERITY = SearchAttributeKey.for_keyword("WinbackSeverity")  # feedback cases: normal | hot
BUSINESS_UNIT = SearchAttributeKey.for_keyword("WinbackBusinessUnit")

ALL = (RETAILER, STAGE, CART_VALUE, TASK_KIND, TASK_QUEUE, SEVERITY, BUSINESS_UNIT)
