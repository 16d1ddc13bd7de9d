"""What a seat sees while it rings and talks, and the per-seat push hub."""
