"""jobdeck worker service."""
