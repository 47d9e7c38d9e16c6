"""jobdeck dashboard: the web page operators use, a client of the public API and gateway."""
