"""The API's shared model types: the base ``Model`` (camelCase JSON), the filter types,
paging limits and the problem-details body. The models of each concern live beside it:
``search_models`` (search, job detail, logs), ``job_command_models`` (enqueue and the
commands on jobs), ``queue_models`` (queues, their config, clean and drain),
``audit_models``, ``schedule_models``, ``export_models``, ``analytics_models``.

JSON names are camelCase (``jobName``, ``createdAt``) as in the seed; Python names stay
snake_case. Query models describe the query string; list fields accept repeated,
``name[]`` and comma-separated forms (see ``routing.raw_query``).
"""

from __future__ import annotations

from typing import Annotated

# The shared filter types, also re-exported here for the API's other model modules.
from jobdeck.filters import EndInstant as EndInstant
from jobdeck.filters import Model as Model
from jobdeck.filters import Priority as Priority
from jobdeck.filters import QueueName as QueueName
from jobdeck.filters import StartInstant as StartInstant
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

DEFAULT_LIMIT = 20
MAX_LIMIT = 200

# Postgres ``real`` columns underflow on denormal floats: keep sane precision.
Seconds = Annotated[float, Field(ge=0.001, le=7 * 86_400), AfterValidator(lambda v: round(v, 3))]
JobId = Annotated[str, Field(min_length=1, max_length=256)]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = Field(default=None, alias="request_id")
    errors: list[dict[str, str]] | None = None
