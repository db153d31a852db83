"""Feedback cases: survey answers in, alert rules, starting and signalling case workflows, and
the closed-loop report with the ROI table."""
