"""Speech engines behind one small contract (``app.engines.base``)."""
