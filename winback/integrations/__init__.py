"""Platforms a retailer connects with a URL and a secret, no code: Shopify and WooCommerce.

Their webhooks are verified, stored once, and turned into the same cart events the storefront
posts (``winback.carts.events``), so deduplication, ordering and signalling behave identically.
"""
