"""Routes for agents, queues and human tasks."""
