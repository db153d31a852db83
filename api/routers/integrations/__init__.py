"""Routes for store platforms: connecting a Shopify or WooCommerce store, and their webhooks."""
