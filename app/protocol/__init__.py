"""Wire formats: request models and the serializers that own JSON, base64 and Twilio events."""
