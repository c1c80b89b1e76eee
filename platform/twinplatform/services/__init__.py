"""Use cases, one per module. Each owns its transaction; settings arrive as arguments (a `Runtime`)."""
