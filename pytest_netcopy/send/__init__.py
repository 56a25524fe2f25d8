"""The message, the send modes and their registry, zero-copy completion accounting."""
