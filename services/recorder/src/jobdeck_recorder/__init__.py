"""jobdeck recorder service."""
