"""jobdeck scheduler: fires cron schedules exactly once across replicas and restarts."""
