"""Models, objectives, the training loop and distributed helpers (later issues)."""
