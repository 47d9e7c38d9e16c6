"""jobdeck api service."""
