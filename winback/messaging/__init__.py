"""Messaging: the touches sent to shoppers and owners: channel adapters and providers,
templates, quiet hours, one-click unsubscribe, and what providers report back."""
