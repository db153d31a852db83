"""People's pages: server-rendered, on the same domain services as the JSON API."""
