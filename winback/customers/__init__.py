"""Customers (shoppers): identity and phone numbers, consent with its history, suppression and
opt-outs, and the agent's view of a caller."""
