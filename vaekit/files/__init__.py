"""Files: reading inputs in chunks, writing outputs atomically (no torch, no models)."""
