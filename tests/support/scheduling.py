"""The seed's schedule example (section 4, "Example Schedule Creation"), verbatim."""

from __future__ import annotations

SEED_BODY = {
    "name": "Daily Analytics Refresh",
    "description": "Refreshes analytics data every day at 2 AM",
    "templateId": "550e8400-e29b-41d4-a716-446655440000",
    "cronExpression": "0 2 * * *",
    "timezone": "America/New_York",
    "priority": 5,
    "isEnabled": True,
}
