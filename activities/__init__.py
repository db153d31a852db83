"""Side effects of the workflows: database reads and writes, messages, webhooks."""
