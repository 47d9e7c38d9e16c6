"""jobdeck exporter service."""
