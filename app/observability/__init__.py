"""Metrics (Prometheus) and structured logs with a request id."""
