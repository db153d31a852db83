"""Routes for feedback: answers, alert rules, cases, the feedback report."""
