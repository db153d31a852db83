"""The composition root: the only package that imports every layer, to build the app, the
worker and the CLI from one set of settings."""
