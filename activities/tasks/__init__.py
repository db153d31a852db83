"""The human-task inbox rows, reminders and escalations."""
