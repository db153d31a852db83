"""Human tasks that any workflow can wait on, and their data types."""
