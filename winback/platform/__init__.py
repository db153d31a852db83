"""What every domain stands on: settings, the database, the Temporal client, crypto, time.

Imports no domain package."""
