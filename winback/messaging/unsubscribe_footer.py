"""Every marketing email shows its unsubscribe link, whatever the retailer's template says.

The ``List-Unsubscribe`` header alone is not enough: the outbox has no headers, and many
clients ignore it. A template may place the link itself (``{{ unsubscribe_url }}``); when the
rendered text or HTML does not contain it, a short footer with the link is appended.
"""

from dataclasses import replace
from html import escape

from winback.messaging.templates import RenderedMessage

TEXT_FOOTER = "\n\n--\nDon't want these emails? Unsubscribe: {url}"
HTML_FOOTER = (
    '<p style="font-size:12px;color:#666">Don\'t want these emails? '
    '<a href="{url}">Unsubscribe</a></p>'
)


def with_unsubscribe_link(message: RenderedMessage, url: str) -> RenderedMessage:
    """The message with ``url`` visible in its text part and, if it has one, its HTML part."""
    body = message.body if url in message.body else message.body + TEXT_FOOTER.format(url=url)
    html = message.html
    escaped = escape(url, quote=True)
    if html is not None and url not in html and escaped not in html:
        footer = HTML_FOOTER.format(url=escaped)
        closing = html.lower().rfind("</body>")
        html = html[:closing] + footer + html[closing:] if closing >= 0 else html + footer
    return replace(message, body=body, html=html)
