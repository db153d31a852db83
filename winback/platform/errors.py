"""Errors the core raises for the API to turn into a 4xx that names the field."""


class InputFieldError(ValueError):
    """A field that can only be checked against stored data (e.g. a national phone number read
    in the store's country); the API answers 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
