"""HTTP and WebSocket routes: parse, call the session layer, serialize. No DSP here."""
