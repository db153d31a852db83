"""The signature Shopify and WooCommerce both put on a webhook: the base64 HMAC-SHA256 of the
raw body with the shared secret (``X-Shopify-Hmac-Sha256``, ``X-WC-Webhook-Signature``).

It must be computed over the bytes as received: re-serialising the JSON changes them.
"""

import base64
import hashlib
import hmac


def body_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_body_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of the header against the body; a missing header is a no."""
    if not header:
        return False
    return hmac.compare_digest(body_signature(secret, body).encode(), header.strip().encode())
