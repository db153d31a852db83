"""Routes for retailers and their provider settings."""
