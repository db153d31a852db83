"""The feedback-case and promoter thank-you workflows and their data types."""
