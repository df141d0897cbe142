"""Arguments that many fields share, with their descriptions: page size and cursor, and the evaluation instant."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

First = Annotated[int | None, strawberry.argument(
    description="How many to return: 1…1000. Null, or left out, is the default shown.")]
After = Annotated[str | None, strawberry.argument(
    description="Return those after this cursor (pageInfo.endCursor of the previous page); null: from the start.")]
AsOf = Annotated[datetime | None, strawberry.argument(
    description="The instant the audience is evaluated at: events after it do not exist for this query, and windows are "
                "measured back from it. Default: now. Give it to page through one audience consistently.")]
EventMetric = Annotated[str | None, strawberry.argument(
    description="Only events of this metric (case-insensitive; the agent metrics' short names work too); null: all.")]
