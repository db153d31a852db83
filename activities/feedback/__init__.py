"""Side effects of feedback cases: alerts, the case row, follow-up surveys, thank-yous."""
