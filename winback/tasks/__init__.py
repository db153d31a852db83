"""Human tasks: the inbox agents browse, skills routing, agents and queues, and agents'
commands sent to the workflow that waits for each task."""
