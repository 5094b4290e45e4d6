"""A DynamoDB that behaves like the service (latency, capacity, throttling, faults), in front of dynalite."""
