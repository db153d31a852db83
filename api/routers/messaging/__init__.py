"""Routes for messaging: templates, the outbox, unsubscribe, provider webhooks."""
