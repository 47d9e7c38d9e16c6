"""jobdeck gateway service."""
