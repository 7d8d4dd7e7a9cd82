"""Real-time text-to-speech for phone-call voice agents."""

__version__ = "0.1.0"
