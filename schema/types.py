"""Output types: profiles, the Event interface and its five kinds, keyset connections, segments."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from resolvers import audiences, changes, membership
from resolvers.errors import InputPath
from resolvers.events import EventPage, event_page
from resolvers.language.structured import filter_from_input
from resolvers.language.text import print_filter
from schema.arguments import After, AsOf, EventMetric, First
from schema.context import GraphQLInfo
from schema.execution import SerializedList
from schema.inputs import SegmentFilter, plain
from schema.paging import EVENTS_PAGE, PROFILES_PAGE, page_size
from schema.scalars import JSON
from store.tables import decode_properties
from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, RESOLVED, STARTED, agent_metric
from vocabulary.timestamps import from_micros

T = TypeVar("T")

# The arguments of audienceChanges and Segment.changes.
SINCE = strawberry.argument(description="The earlier instant, e.g. the asOf of the last sync; before asOf.")
CHANGES_AS_OF = strawberry.argument(description="The later instant; default now.")
CHANGES_FIRST = strawberry.argument(description="How many changes this page holds (1 to 1000).")
CHANGES_AFTER = strawberry.argument(description="The endCursor of the page before; none for the first page.")

CONVERSATION_ID = "The conversation it belongs to (conversation_id)."
# The code of the warning of a metric a filter names that has no events.
UNKNOWN_METRIC = "UNKNOWN_METRIC"


@strawberry.enum(description="The four Customer Agent metrics. Each name is also accepted wherever a metric is named.")
class AgentMetric(Enum):
    STARTED_CONVERSATION = strawberry.enum_value(STARTED.enum_name, description=f'"{STARTED.name}"')
    CONVERSATION_RESOLVED = strawberry.enum_value(RESOLVED.enum_name, description=f'"{RESOLVED.name}"')
    CONVERSATION_ESCALATED = strawberry.enum_value(ESCALATED.enum_name, description=f'"{ESCALATED.name}"')
    RECEIVED_PRODUCT_RECOMMENDATION = strawberry.enum_value(RECOMMENDED.enum_name, description=f'"{RECOMMENDED.name}"')


@strawberry.type(description="Where a page is in its list (keyset pagination: pass endCursor as `after` for the next page).")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more come after this page.")
    has_previous_page: bool = strawberry.field(description="Whether this page was asked for with an `after` cursor.")
    start_cursor: str | None = strawberry.field(description="The cursor of the page's first item; null when it is empty.")
    end_cursor: str | None = strawberry.field(description="The cursor of the page's last item; null when it is empty.")

    @classmethod
    def of(cls, cursors: list[str], has_next_page: bool, after: str | None) -> PageInfo:
        return cls(
            has_next_page=has_next_page,
            has_previous_page=after is not None,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


def first_and_last(items: list[T]) -> list[T]:
    """A page's first and last items, whose cursors PageInfo gives (one item: itself once)."""
    return items[:1] + items[-1:] if len(items) > 1 else items


# ---------------------------------------------------------------- profiles


@strawberry.type(description="A person: identifiers (each unique when set), names and free properties, and the events "
                             "they did.")
class Profile:
    id: strawberry.ID = strawberry.field(description="The profile's id.")
    email: str | None = strawberry.field(description="The email, unique when set.")
    phone_number: str | None = strawberry.field(description="The phone number, unique when set.")
    external_id: str | None = strawberry.field(description="Your system's id for the person, unique when set.")
    first_name: str | None = strawberry.field(description="The first name.")
    last_name: str | None = strawberry.field(description="The last name.")
    stored_properties: strawberry.Private[Any]
    created_micros: strawberry.Private[int]
    updated_micros: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: Any) -> Profile:
        """A profile from a row of store.tables.PROFILE_ROW (unpacked by position: a thousand rows a page)."""
        key, email, phone_number, external_id, first_name, last_name, stored_properties, created, updated = row
        return cls(
            id=strawberry.ID(str(key)), email=email, phone_number=phone_number, external_id=external_id,
            first_name=first_name, last_name=last_name, stored_properties=stored_properties,
            created_micros=created, updated_micros=updated,
        )

    @strawberry.field(description="Free properties: a JSON object (filters read them by key, e.g. `loyalty tier`).")
    def properties(self) -> JSON:
        return decode_properties(self.stored_properties)

    # Times convert only when asked for: pages of a thousand profiles rarely ask.
    @strawberry.field(description="When the profile was created (UTC).")
    def created_at(self) -> datetime:
        return from_micros(self.created_micros)

    @strawberry.field(description="When the profile was last changed (UTC).")
    def updated_at(self) -> datetime:
        return from_micros(self.updated_micros)

    @strawberry.field(description="Newest first.")
    async def events(
        self, info: GraphQLInfo, metric: EventMetric = None, first: First = EVENTS_PAGE, after: After = None
    ) -> EventConnection:
        first = page_size(first, EVENTS_PAGE)
        if after is None:  # first pages of a whole page of profiles come in one query
            page = await info.context.first_event_pages(metric, first).load(int(self.id))
        else:
            page = await event_page(info.context.store, first, after, metric=metric, profile_id=int(self.id))
        return EventConnection.of(page, after)


    @strawberry.field(description="The intervals of [from, to] (to: default now) during which this profile was in "
                      "the filter's audience, oldest first, exact to the microsecond (evaluated over the store as it "
                      "is now). At most 1,000 intervals and 36,500 days; from must be before to.")
    async def membership(
        self, info: GraphQLInfo,
        filter: Annotated[SegmentFilter, strawberry.argument(description="The audience's filter.")],
        from_: Annotated[datetime, strawberry.argument(name="from", description="The range's first instant.")],
        to: Annotated[datetime | None, strawberry.argument(description="The range's last instant; default now.")] = None,
    ) -> list[MembershipInterval]:
        found = await membership.membership_intervals(info.context.store, int(self.id), plain(filter), from_, to)
        return [MembershipInterval(from_=from_micros(start), to=from_micros(end) if end is not None else None)
                for start, end in found]


@strawberry.type(description="A time during which a profile was in an audience.")
class MembershipInterval:
    from_: datetime = strawberry.field(name="from", description="The first instant it was a member (the range's "
                                                                "start when it was a member already then).")
    to: datetime | None = strawberry.field(description="The first instant it was no longer a member; null when "
                                                       "still a member at the range's end.")


# The PROFILE_ROW columns each Profile field reads (the id is always read).
PROFILE_FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": (), "__typename": (), "events": (),
    "email": ("email",), "phoneNumber": ("phone_number",), "externalId": ("external_id",),
    "firstName": ("first_name",), "lastName": ("last_name",), "properties": ("properties",),
    "createdAt": ("created_at",), "updatedAt": ("updated_at",),
}


def requested_profile_columns(selected: list[Selection]) -> set[str] | None:
    """The columns the profiles of a ProfileConnection field need for what it selects (nodes, edges.node);
    None (all of them) when a selection names a field this does not know."""
    columns: set[str] = set()
    for connection_field in _fields(selected):
        for part in _fields(connection_field.selections):
            if part.name == "edges":
                profiles = [field for edge in _fields(part.selections) if edge.name == "node"
                            for field in _fields(edge.selections)]
            elif part.name == "nodes":
                profiles = list(_fields(part.selections))
            else:
                continue
            for field in profiles:
                if field.name not in PROFILE_FIELD_COLUMNS:
                    return None
                columns.update(PROFILE_FIELD_COLUMNS[field.name])
    return columns


# Profile fields whose response value is a column's text as it is (the id as a string), or the type name (None).
PROFILE_JSON_FIELDS: dict[str, str | None] = {
    "id": "id", "__typename": None,
    **{name: PROFILE_FIELD_COLUMNS[name][0] for name in ("email", "phoneNumber", "externalId", "firstName", "lastName")},
}
CONNECTION_FIELDS_BESIDE_JSON_NODES = {"pageInfo", "totalCount"}
CHANGE_CONNECTION_FIELDS_BESIDE_JSON_EDGES = {"pageInfo", "totalCount", "entered", "exited"}
# Parts of an AudienceChangeEdge written as JSON (changes.EdgeJson), by field name.
CHANGE_EDGE_JSON_PARTS = {"cursor": "cursor", "change": "change", "node": "node", "__typename": "type"}


def node_json(selected: list[Selection]) -> audiences.NodeJson | None:
    """The nodes of a ProfileConnection field as the database can write them in JSON, when they are plain:
    one `nodes` (no `edges`) selecting only PROFILE_JSON_FIELDS, without fragments, arguments, directives
    or a response name twice. None otherwise (the profiles are built as objects)."""
    nodes = _only_list(selected, "nodes", CONNECTION_FIELDS_BESIDE_JSON_NODES)
    return None if nodes is None else _json_profile(nodes)


def edge_json(selected: list[Selection]) -> changes.EdgeJson | None:
    """The edges of an AudienceChangeConnection field as JSON written from the database's node text, when
    plain: one `edges` of cursor, change, __typename and a `node` as `node_json` takes it. None otherwise."""
    edges = _only_list(selected, "edges", CHANGE_CONNECTION_FIELDS_BESIDE_JSON_EDGES)
    if edges is None:
        return None
    keys: list[tuple[str, str]] = []
    node = None
    for part in edges.selections:
        if (not isinstance(part, SelectedField) or part.name not in CHANGE_EDGE_JSON_PARTS or part.directives
                or part.arguments or (part.selections and part.name != "node")):
            return None
        if part.name == "node":
            if node is not None:  # asked twice, under two response names
                return None
            node = _json_profile(part)
            if node is None:
                return None
        keys.append((part.alias or part.name, CHANGE_EDGE_JSON_PARTS[part.name]))
    if node is None or len({key for key, _ in keys}) != len(keys):
        return None
    return changes.EdgeJson(tuple(keys), node, AudienceChangeEdge.__name__)


def _only_list(selected: list[Selection], name: str, others: set[str]) -> SelectedField | None:
    """The one `name` field of a connection's selection, beside only `others`, without fragments or directives."""
    if len(selected) != 1:
        return None
    parts = [part for part in selected[0].selections if isinstance(part, SelectedField)]
    if len(parts) != len(selected[0].selections):  # a fragment
        return None
    found = [part for part in parts if part.name == name]
    if len(found) != 1 or found[0].directives or not {part.name for part in parts} - {name} <= others:
        return None
    return found[0]


def _json_profile(node: SelectedField) -> audiences.NodeJson | None:
    """A Profile's selection as the database can write it in JSON: only PROFILE_JSON_FIELDS, without
    fragments, arguments, directives or a response name twice."""
    fields: list[tuple[str, str | None]] = []
    for field in node.selections:
        if (not isinstance(field, SelectedField) or field.name not in PROFILE_JSON_FIELDS or field.directives
                or field.arguments or field.selections):
            return None
        fields.append((field.alias or field.name, PROFILE_JSON_FIELDS[field.name]))
    if len({key for key, _ in fields}) != len(fields):
        return None
    return audiences.NodeJson(tuple(fields), Profile.__name__)


def _fields(selections: list[Selection]) -> Iterator[SelectedField]:
    """The fields of a selection, those of its fragments included."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        else:
            yield from _fields(selection.selections)


@strawberry.type(description="A profile and its cursor.")
class ProfileEdge:
    cursor: str = strawberry.field(description="Pass it as `after` to continue after this profile.")
    node: Profile = strawberry.field(description="The profile.")


@strawberry.type(description="A page of profiles, in id order.")
class ProfileConnection:
    """A page of profiles; nodes, edges (with their cursors) and totalCount are built only when asked for."""

    page_info: PageInfo = strawberry.field(description="Where the page is: hasNextPage, and endCursor for the next page.")
    page: strawberry.Private[audiences.ProfilePage]

    @strawberry.field(description="The page's profiles (edges without cursors).")
    def nodes(self) -> list[Profile]:
        if self.page.nodes_json is not None:
            return SerializedList(self.page.nodes_json)
        return [Profile.from_row(row) for row in self.page.rows]

    @strawberry.field(description="The page's profiles, each with its cursor.")
    def edges(self) -> list[ProfileEdge]:
        page = self.page
        return [ProfileEdge(cursor=page.cursor(member_id), node=Profile.from_row(row))
                for member_id, row in zip(page.ids, page.rows, strict=True)]

    @strawberry.field(description="How many profiles the whole list has, every page together (counted only when asked for).")
    async def total_count(self) -> int:
        return await self.page.count()

    @classmethod
    def of(cls, page: audiences.ProfilePage, after: str | None) -> ProfileConnection:
        ends = [page.cursor(member_id) for member_id in first_and_last(page.ids)]
        return cls(page_info=PageInfo.of(ends, page.has_next_page, after), page=page)


# ---------------------------------------------------------------- events


@strawberry.interface(description="One thing a profile did. Events are never changed once stored. The four Customer Agent "
                                  "metrics have types of their own; any other metric is a CustomEvent.")
class Event:
    id: strawberry.ID = strawberry.field(description="The event's id.")
    metric: str = strawberry.field(description="The metric's name; the agent metrics' canonical name.")
    occurred_at: datetime = strawberry.field(description="When it happened (UTC).")
    channel: str | None = strawberry.field(description="Its `channel` property, when it has one (e.g. SMS, web).")
    properties: JSON = strawberry.field(description="Its properties, a JSON object (the agent metrics' keys in snake_case).")
    profile_id: strawberry.Private[int]

    @strawberry.field(description="Who did it.")
    async def profile(self, info: GraphQLInfo) -> Profile:
        return Profile.from_row(await info.context.profiles.load(self.profile_id))

    def _text(self, key: str) -> str | None:
        value = self._properties().get(key)
        return value if isinstance(value, str) else None

    def _properties(self) -> dict[str, Any]:
        return self.properties if isinstance(self.properties, dict) else {}

    def _strings(self, key: str) -> list[str]:
        value = self._properties().get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@strawberry.type(description='"Started Conversation with Customer Agent".')
class StartedConversationEvent(Event):
    @strawberry.field(description=CONVERSATION_ID)
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field(description="The agent skill the conversation started with (initial_skill).")
    def initial_skill(self) -> str | None:
        return self._text("initial_skill")


@strawberry.type(description='"Conversation with Customer Agent Resolved".')
class ConversationResolvedEvent(Event):
    @strawberry.field(description=CONVERSATION_ID)
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field(description="The agent skill that resolved it (final_skill).")
    def final_skill(self) -> str | None:
        return self._text("final_skill")

    @strawberry.field(description="Its tags (strings of the tags property).")
    def tags(self) -> list[str]:
        return self._strings("tags")


@strawberry.type(description='"Conversation with Customer Agent Escalated".')
class ConversationEscalatedEvent(Event):
    @strawberry.field(description=CONVERSATION_ID)
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field(description="Why it was escalated (escalation_reason).")
    def escalation_reason(self) -> str | None:
        return self._text("escalation_reason")

    @strawberry.field(description="Its tags (strings of the tags property).")
    def tags(self) -> list[str]:
        return self._strings("tags")


@strawberry.type(description='"Received Product Recommendation from Customer Agent".')
class ProductRecommendationEvent(Event):
    @strawberry.field(description=CONVERSATION_ID)
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field(description="The recommended product ids or SKUs.")
    def products(self) -> list[str]:
        return self._strings("products")


@strawberry.type(description="Any metric that is not a Customer Agent metric, e.g. Placed Order.")
class CustomEvent(Event):
    pass


EVENT_TYPES: dict[str, type[Event]] = {
    STARTED.enum_name: StartedConversationEvent,
    RESOLVED.enum_name: ConversationResolvedEvent,
    ESCALATED.enum_name: ConversationEscalatedEvent,
    RECOMMENDED.enum_name: ProductRecommendationEvent,
}


def event_from_row(row: Any) -> Event:
    """The typed event for a stored row (id, profile_id, metric, ts, channel, properties)."""
    agent = agent_metric(row.metric)
    kind = EVENT_TYPES[agent.enum_name] if agent else CustomEvent
    return kind(
        id=strawberry.ID(str(row.id)), metric=row.metric, occurred_at=from_micros(row.ts),
        channel=row.channel, properties=row.properties, profile_id=row.profile_id,
    )


@strawberry.type(description="An event and its cursor.")
class EventEdge:
    cursor: str = strawberry.field(description="Pass it as `after` to continue after this event.")
    node: Event = strawberry.field(description="The event.")


@strawberry.type(description="A page of events, newest first.")
class EventConnection:
    edges: list[EventEdge] = strawberry.field(description="The page's events, each with its cursor.")
    page_info: PageInfo = strawberry.field(description="Where the page is: hasNextPage, and endCursor for the next page.")

    @strawberry.field(description="The page's events (edges without cursors).")
    def nodes(self) -> list[Event]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: EventPage, after: str | None) -> EventConnection:
        edges = [EventEdge(cursor=page.cursor(row), node=event_from_row(row)) for row in page.rows]
        return cls(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], page.has_next_page, after))


# ---------------------------------------------------------------- segments


@strawberry.type(description="A saved filter: its members are evaluated whenever asked for, at an asOf.")
class Segment:
    id: strawberry.ID = strawberry.field(description="The segment's id, for inSegment and the export URLs.")
    name: str = strawberry.field(description="Its name.")
    description: str | None = strawberry.field(description="Free text; null when none.")
    filter: JSON = strawberry.field(description="The filter as stored, in the SegmentFilter input shape.")
    created_at: datetime = strawberry.field(description="When it was created (UTC).")
    updated_at: datetime = strawberry.field(description="When it was last changed (UTC).")

    @classmethod
    def from_row(cls, row: Any) -> Segment:
        return cls(
            id=strawberry.ID(str(row.id)), name=row.name, description=row.description, filter=row.filter,
            created_at=from_micros(row.created_at), updated_at=from_micros(row.updated_at),
        )

    @strawberry.field(description="The filter written in the text language.")
    def expression(self) -> str:
        return print_filter(filter_from_input(self.filter))

    @strawberry.field(description="How many members it has at asOf.")
    async def count(self, info: GraphQLInfo, as_of: AsOf = None) -> int:
        audience = await self._audience(info, as_of)
        return await audiences.count_members(info.context.store, audience)

    @strawberry.field(description="Its members at asOf, in id order.")
    async def members(
        self, info: GraphQLInfo, first: First = PROFILES_PAGE, after: After = None, as_of: AsOf = None
    ) -> ProfileConnection:
        return await audience_page(info, self.filter, as_of, page_size(first, PROFILES_PAGE), after, ())

    @strawberry.field(description="Who entered and who left between two instants: ENTERED are the members at "
                      "asOf (default: now) that were not members at since, EXITED the reverse; in profile id order. "
                      "A campaign tool syncs its copy by asking for the changes since its last sync's asOf.")
    async def changes(
        self, info: GraphQLInfo, since: Annotated[datetime, SINCE], as_of: Annotated[datetime | None, CHANGES_AS_OF] = None,
        first: Annotated[int | None, CHANGES_FIRST] = PROFILES_PAGE, after: Annotated[str | None, CHANGES_AFTER] = None,
    ) -> AudienceChangeConnection:
        return await audience_changes(info, self.filter, since, as_of, page_size(first, PROFILES_PAGE), after, ())

    async def _audience(self, info: GraphQLInfo, as_of: datetime | None) -> audiences.Audience:
        # Compiled from the stored filter already loaded: no second read of this segment.
        return await compiled_audience(info, self.filter, as_of, ())


async def audience_page(
    info: GraphQLInfo, filter_value: Any, as_of: datetime | None, first: int, after: str | None, path: InputPath
) -> ProfileConnection:
    """A page of the audience of `filter_value` (plain JSON; None: everyone), reading what the field's
    selection needs: nodes as the database's JSON when they are plain, else the profiles' columns."""
    selected = info.selected_fields
    as_json = node_json(selected)
    columns = None if as_json is not None else requested_profile_columns(selected)
    request = audiences.PageRequest(filter_value, as_of, first, after,
                                    None if columns is None else frozenset(columns), as_json)
    audience = await compiled_audience(info, filter_value, as_of, path)
    return ProfileConnection.of(await audiences.read_page(info.context.store, audience, request, info.context.paging.policy),
                                after)


async def compiled_audience(info: GraphQLInfo, filter_value: Any, as_of: datetime | None, path: InputPath
                            ) -> audiences.Audience:
    """The audience of `filter_value` (plain JSON; None: everyone), warning of the metrics it names that have no events."""
    store, paging = info.context.store, info.context.paging
    audience = await audiences.compile_filter(store, filter_value, as_of, path, paging.compiled)
    await warn_of_unknown_metrics(info, audience.metric_names)
    return audience


async def warn_of_unknown_metrics(info: GraphQLInfo, names: Iterable[str]) -> None:
    """Warn in the response (`extensions.warnings`, at this field's path) of each metric named with no events."""
    for unknown in await info.context.paging.metrics.unknown(info.context.store, names):
        info.context.warn(unknown.message, UNKNOWN_METRIC, info.path.as_list(), metric=unknown.name,
                          didYouMean=list(unknown.did_you_mean))



# ---------------------------------------------------------------- audience changes


@strawberry.enum(description="Which way a profile crossed an audience's edge between two instants.")
class AudienceChange(Enum):
    ENTERED = strawberry.enum_value(changes.ENTERED, description="A member at asOf and not at since.")
    EXITED = strawberry.enum_value(changes.EXITED, description="A member at since and not at asOf.")


@strawberry.type(description="A profile that entered or left the audience, with its keyset cursor.")
class AudienceChangeEdge:
    cursor: str = strawberry.field(description="Where the next page starts when this edge ends a page.")
    change: AudienceChange = strawberry.field(description="ENTERED: a member at asOf and not at since; "
                                                          "EXITED: a member at since and not at asOf.")
    node: Profile = strawberry.field(description="The profile, as it is now.")


@strawberry.type(description="The profiles that entered or left an audience between since and asOf, in id order.")
class AudienceChangeConnection:
    page_info: PageInfo = strawberry.field(description="Whether more changes follow, and the cursors to ask for them.")
    page: strawberry.Private[changes.ChangePage]
    found: strawberry.Private[changes.Changes]
    store: strawberry.Private[Any]
    counted: strawberry.Private[asyncio.Future[tuple[int, int]] | None] = None

    @strawberry.field(description="This page's changes, in profile id order.")
    def edges(self) -> list[AudienceChangeEdge]:
        page = self.page
        if page.edges_json is not None:
            return SerializedList(page.edges_json)
        return [AudienceChangeEdge(cursor=page.cursor(row), change=AudienceChange(row[-1]), node=Profile.from_row(row[:-1]))
                for row in page.rows]

    @strawberry.field(description="entered + exited: every change between the two instants, not only this page's.")
    async def total_count(self) -> int:
        return sum(await self._counts())

    @strawberry.field(description="How many profiles entered between the two instants (all pages).")
    async def entered(self) -> int:
        return (await self._counts())[0]

    @strawberry.field(description="How many profiles left between the two instants (all pages).")
    async def exited(self) -> int:
        return (await self._counts())[1]

    def _counts(self) -> asyncio.Future[tuple[int, int]]:
        """Both counts in one statement, however many of the three fields ask."""
        if self.counted is None:
            self.counted = asyncio.ensure_future(changes.count_changes(self.store, self.found))
        return self.counted


async def audience_changes(
    info: GraphQLInfo, filter_value: Any, since: datetime, as_of: datetime | None, first: int, after: str | None,
    path: InputPath,
) -> AudienceChangeConnection:
    """A page of the changes of the audience of `filter_value` (plain JSON) between `since` and `as_of`."""
    store, paging = info.context.store, info.context.paging
    found = await changes.compile_changes(store, filter_value, since, as_of, path, paging.compiled)
    page = await changes.change_page(store, found, first, after, paging.policy, edge_json(info.selected_fields))
    ends = [page.cursor(row) for row in first_and_last(page.rows)]
    return AudienceChangeConnection(page_info=PageInfo.of(ends, page.has_next_page, after), page=page, found=found,
                                    store=store)
