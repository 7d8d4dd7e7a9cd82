"""Wire formats: request models, the typed events sessions emit (``events``), and the
serializers that turn those events into JSON, base64, Twilio events or raw bytes."""
