"""Routes for customers: the agent's lookup, consent."""
