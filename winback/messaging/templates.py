"""Message templates: the default set, and rendering in Jinja2's sandbox.

Retailers write templates, so they run in an ``ImmutableSandboxedEnvironment`` (no attribute
tricks, no mutation) with ``StrictUndefined`` (a typo fails at save time, not at 3 a.m.). HTML is
autoescaped; text parts are not.
"""

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 200_000  # a rendered part longer than this is refused
MAX_RESULT_BITS = 4_096  # an integer a template computes: enough for any price, never 9**3000000
_FORMAT_WIDTH = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d*))?")


class RenderError(TemplateError):
    """The template parsed but failed while rendering ({{ 1/0 }}, {{ total + 1 }}, ...)."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on what one operator can cost.

    Intercepted operators are also never folded at compile time, so ``{{ 9**3000000 }}`` is
    refused here instead of being computed while compiling.
    """

    intercepted_binops = frozenset({"**", "*", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        problem = _too_costly(operator, left, right)
        if problem is not None:
            raise RenderError(problem)
        return super().call_binop(context, operator, left, right)


def _too_costly(operator: str, left: Any, right: Any) -> str | None:
    """Why ``left <operator> right`` would cost too much to compute; None if it is cheap."""
    ints = isinstance(left, int) and isinstance(right, int)
    bits = abs(left).bit_length() * right if ints and abs(left) > 1 else 0
    if operator == "**" and bits > MAX_RESULT_BITS:
        return f"{left} ** {right} is too large"
    if operator == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_RESULT_BITS:
            return "a product is too large"
        for seq, times in ((left, right), (right, left)):
            sequence = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if sequence and len(seq) * times > MAX_OUTPUT_CHARS:
                return "a repeated sequence would be too long"
    if operator == "%" and isinstance(left, str):
        widths = [w for pair in _FORMAT_WIDTH.findall(left) for w in pair if w]
        if any(int(w) > MAX_OUTPUT_CHARS for w in widths):
            return "a format width is too large"
    return None


_text_env = _BoundedSandbox(undefined=StrictUndefined, autoescape=False)
_html_env = _BoundedSandbox(undefined=StrictUndefined, autoescape=True)


@dataclass(frozen=True)
class TemplateSource:
    channel: str
    body: str
    subject: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class RenderedMessage:
    body: str
    subject: str | None = None
    html: str | None = None


@dataclass
class MessageContext:
    """Everything a template can use."""

    shopper_name: str | None
    items: list[dict[str, Any]]
    total: float
    currency: str
    cart_url: str
    store_name: str
    discount_code: str | None = None
    offer: list[str] = field(default_factory=list)
    unsubscribe_url: str | None = None  # emails: shown in a footer unless the template shows it

    def as_dict(self) -> dict[str, Any]:
        return {
            "shopper_name": self.shopper_name,
            "first_name": (self.shopper_name or "").split(" ")[0] or None,
            "items": self.items,
            "item_count": sum(int(i.get("quantity", 1)) for i in self.items),
            "total": f"{self.total:.2f}",
            "currency": self.currency,
            "cart_url": self.cart_url,
            "store_name": self.store_name,
            "discount_code": self.discount_code,
            "offer": self.offer,
            "unsubscribe_url": self.unsubscribe_url,
        }


_ITEMS_TEXT = "{% for item in items %}- {{ item.name }} x{{ item.quantity }}\n{% endfor %}"
_ITEMS_HTML = (
    "<ul>{% for item in items %}<li>{{ item.name }} &times; {{ item.quantity }} "
    "({{ currency }} {{ '%.2f' % item.price }})</li>{% endfor %}</ul>"
)
_GREETING = "Hi{% if first_name %} {{ first_name }}{% endif %},"
_DISCOUNT_TEXT = "{% if discount_code %}Use code {{ discount_code }} at checkout.\n{% endif %}"
_DISCOUNT_HTML = "{% if discount_code %}<p>Use code <b>{{ discount_code }}</b>.</p>{% endif %}"

DEFAULT_TEMPLATES: dict[str, TemplateSource] = {
    "onsite_help": TemplateSource(
        channel="onsite",
        body="Need a hand choosing? Chat with us now, or we can call you back.",
    ),
    "cart_reminder": TemplateSource(
        channel="email",
        subject="You left something in your cart at {{ store_name }}",
        body=(
            f"{_GREETING}\n\nYour cart is waiting:\n{_ITEMS_TEXT}\n"
            "Total: {{ currency }} {{ total }}\n"
            + _DISCOUNT_TEXT
            + "Back to your cart: {{ cart_url }}\n"
        ),
        html=(
            f"<p>{_GREETING}</p><p>Your cart is waiting:</p>{_ITEMS_HTML}"
            "<p>Total: {{ currency }} {{ total }}</p>"
            + _DISCOUNT_HTML
            + '<p><a href="{{ cart_url }}">Back to your cart</a></p>'
        ),
    ),
    "cart_last_chance": TemplateSource(
        channel="email",
        subject="Last chance: your cart at {{ store_name }} is about to expire",
        body=(
            f"{_GREETING}\n\nWe're holding these for you a little longer:\n{_ITEMS_TEXT}\n"
            + _DISCOUNT_TEXT
            + "Complete your order: {{ cart_url }}\n"
        ),
        html=(
            f"<p>{_GREETING}</p><p>We're holding these for you a little longer:</p>{_ITEMS_HTML}"
            + _DISCOUNT_HTML
            + '<p><a href="{{ cart_url }}">Complete your order</a></p>'
        ),
    ),
    "cart_sms": TemplateSource(
        channel="sms",
        body=(
            "{{ store_name }}: your cart ({{ currency }} {{ total }}) is saved. "
            "{% if discount_code %}Code {{ discount_code }}. {% endif %}"
            "{{ cart_url }} Reply STOP to opt out."
        ),
    ),
    "cart_voice": TemplateSource(
        channel="voice",
        body=(
            "Hello{% if first_name %} {{ first_name }}{% endif %}, this is {{ store_name }}. "
            "You left {{ item_count }} items in your cart. "
            "We've saved it for you; you can complete your order on our website."
        ),
    ),
}

SAMPLE_CONTEXT = MessageContext(
    shopper_name="Ana García",
    items=[{"sku": "SKU-1", "name": "Trail shoe", "quantity": 1, "price": 120.0}],
    total=120.0,
    currency="EUR",
    cart_url="https://shop.example.com/cart/c-1",
    store_name="Example Store",
    discount_code="WELCOME10",
    unsubscribe_url="https://winback.example.com/v1/unsubscribe/sample-token",
)


def render(source: TemplateSource, context: MessageContext) -> RenderedMessage:
    """Renders a template; raises jinja2.TemplateError on any problem in it."""
    try:
        return _render(source, context)
    except TemplateError:
        raise
    except Exception as err:  # a retailer's template can fail in any way Python can
        raise RenderError(f"{type(err).__name__}: {err}") from err


@lru_cache(maxsize=1024)
def _compiled(text: str, html: bool = False) -> Template:
    """Compiling costs milliseconds; a retailer's few templates are compiled once."""
    return (_html_env if html else _text_env).from_string(text)


def _bounded(template: Template, values: dict[str, Any]) -> str:
    """Renders chunk by chunk, stopping as soon as the output passes the bound."""
    chunks, size = [], 0
    for chunk in template.generate(values):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise RenderError(f"renders to more than {MAX_OUTPUT_CHARS} characters")
        chunks.append(chunk)
    return "".join(chunks)


def _render(source: TemplateSource, context: MessageContext) -> RenderedMessage:
    values = context.as_dict()
    return RenderedMessage(
        body=_bounded(_compiled(source.body), values).strip(),
        subject=_bounded(_compiled(source.subject), values).strip() if source.subject else None,
        html=_bounded(_compiled(source.html, html=True), values) if source.html else None,
    )


def check(source: TemplateSource) -> str | None:
    """A readable error if the template does not render against a sample cart, else None."""
    try:
        render(source, SAMPLE_CONTEXT)
    except TemplateError as err:
        line = getattr(err, "lineno", None)
        return f"{type(err).__name__}: {err.message}" + (f" (line {line})" if line else "")
    return None
