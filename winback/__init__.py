"""Winback's core, one package per domain, plus the platform they stand on.

- ``carts``: storefront events in, cadences, the cart↔workflow sync, attribution and its report.
- ``feedback``: survey answers, alert rules, cases and the closed-loop report.
- ``tasks``: the human-task inbox, skills routing, agents' commands to workflows.
- ``customers``: identity (phones), consent, suppression and opt-outs, the agent's view.
- ``messaging``: channels and providers, templates, unsubscribe links, provider events.
- ``retailers``: the tenants, their keys and provider settings.
- ``platform``: settings, database, Temporal client, crypto, time.
- ``composition``: the one place that wires them into the app, the worker and the CLI.
"""
