"""Workflows call activities through stubs (``workflows/*/activities.py``); the worker registers
the real methods. A stub and its implementation must agree on name and types, or a workflow
would schedule an activity no worker runs, or decode its result as the wrong type."""

import inspect
import typing
from types import ModuleType
from typing import Any, cast

import pytest
from temporalio import activity

from winback.composition.worker import activity_implementations
from winback.platform.settings import Settings
from workflows.carts import activities as cart_activities
from workflows.feedback import activities as case_activities
from workflows.tasks import activities as task_activities

STUB_MODULES = (cart_activities, case_activities, task_activities)


def _stubs(module: ModuleType) -> dict[str, Any]:
    found = {}
    for _, fn in inspect.getmembers(module, inspect.iscoroutinefunction):
        defn = activity._Definition.from_callable(fn)
        if defn is not None and fn.__module__ == module.__name__:
            found[defn.name] = fn
    return found


STUBS = {name: fn for module in STUB_MODULES for name, fn in _stubs(module).items()}


def _implementations() -> dict[str, Any]:
    registered = activity_implementations(
        settings=Settings(), sessions=cast(Any, None), adapters=cast(Any, {})
    )
    found = {}
    for fn in registered:
        defn = activity._Definition.from_callable(fn)
        assert defn is not None and defn.name is not None
        found[defn.name] = fn
    return found


def _signature(fn: Any) -> tuple[list[Any], Any]:
    hints = typing.get_type_hints(fn)
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    return [hints[p.name] for p in params], hints["return"]


def test_every_stub_has_an_implementation_and_every_implementation_a_stub() -> None:
    assert sorted(STUBS) == sorted(_implementations())


@pytest.mark.parametrize("name", sorted(STUBS))
def test_stub_and_implementation_agree_on_types(name: str) -> None:
    assert _signature(STUBS[name]) == _signature(_implementations()[name])
