"""Retailers, the tenants: their records, API keys and their own SendGrid/Twilio settings."""
