"""Text that no database here can keep whole: a NUL character.

PostgreSQL refuses a NUL in text, and SQLite's JSON functions (the batch statements of
``carts.fast_events`` unpack their rows with ``json_each``) cut a string at its first NUL, so an
event id or item name with one would be stored cut short. Storefront events are refused with a
422 naming the field instead, on both databases alike, before anything is stored."""

from typing import Any

NUL = "\x00"


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first string holding a NUL is in ``value`` (a parsed JSON body), as a dotted
    path (``items.0.name``); None if there is none."""
    if isinstance(value, str):
        return path or "value" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = nul_path(item, f"{path}.{key}" if path else str(key))
            if where is not None:
                return where
    elif isinstance(value, list):
        for index, item in enumerate(value):
            where = nul_path(item, f"{path}.{index}" if path else str(index))
            if where is not None:
                return where
    return None


def refuse_nul(data: Any) -> Any:
    """A ``model_validator(mode="before")`` body: raises if any text in ``data`` holds a NUL."""
    where = nul_path(data)
    if where is not None:
        raise ValueError(f"{where}: text cannot contain a NUL character")
    return data
