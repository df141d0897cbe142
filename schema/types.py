"""Output types: profiles, the Event interface and its five kinds, keyset connections, segments."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from resolvers import audiences, changes, membership
from resolvers.errors import InputPath
from resolvers.events import EventPage, event_page
from resolvers.language.structured import filter_from_input
from resolvers.language.text import print_filter
from schema.context import GraphQLInfo
from schema.execution import SerializedList
from schema.inputs import SegmentFilter, plain
from schema.scalars import JSON
from store.tables import decode_properties
from vocabulary.agent_metrics import ESCALATED, RECOMMENDED, RESOLVED, STARTED, agent_metric
from vocabulary.timestamps import from_micros

# The arguments of audienceChanges and Segment.changes.
SINCE = strawberry.argument(description="The earlier instant, e.g. the asOf of the last sync; before asOf.")
CHANGES_AS_OF = strawberry.argument(description="The later instant; default now.")
CHANGES_FIRST = strawberry.argument(description="How many changes this page holds (1 to 1000).")
CHANGES_AFTER = strawberry.argument(description="The endCursor of the page before; none for the first page.")


@strawberry.enum(description="The four Customer Agent metrics.")
class AgentMetric(Enum):
    STARTED_CONVERSATION = STARTED.enum_name
    CONVERSATION_RESOLVED = RESOLVED.enum_name
    CONVERSATION_ESCALATED = ESCALATED.enum_name
    RECEIVED_PRODUCT_RECOMMENDATION = RECOMMENDED.enum_name


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: list[str], has_next_page: bool, after: str | None) -> PageInfo:
        return cls(
            has_next_page=has_next_page,
            has_previous_page=after is not None,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


# ---------------------------------------------------------------- profiles


@strawberry.type
class Profile:
    id: strawberry.ID
    email: str | None
    phone_number: str | None
    external_id: str | None
    first_name: str | None
    last_name: str | None
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

    @strawberry.field
    def properties(self) -> JSON:
        return decode_properties(self.stored_properties)

    # Times convert only when asked for: pages of a thousand profiles rarely ask.
    @strawberry.field
    def created_at(self) -> datetime:
        return from_micros(self.created_micros)

    @strawberry.field
    def updated_at(self) -> datetime:
        return from_micros(self.updated_micros)

    @strawberry.field(description="Newest first.")
    async def events(
        self, info: GraphQLInfo, metric: str | None = None, first: int = 50, after: str | None = None
    ) -> EventConnection:
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


def node_json(selected: list[Selection]) -> audiences.NodeJson | None:
    """The nodes of a ProfileConnection field as the database can write them in JSON, when they are plain:
    one `nodes` (no `edges`) selecting only PROFILE_JSON_FIELDS, without fragments, arguments, directives
    or a response name twice. None otherwise (the profiles are built as objects)."""
    if len(selected) != 1:
        return None
    parts = [part for part in selected[0].selections if isinstance(part, SelectedField)]
    if len(parts) != len(selected[0].selections):  # a fragment
        return None
    nodes = [part for part in parts if part.name == "nodes"]
    others = {part.name for part in parts} - {"nodes"}
    if len(nodes) != 1 or nodes[0].directives or not others <= CONNECTION_FIELDS_BESIDE_JSON_NODES:
        return None
    fields: list[tuple[str, str | None]] = []
    for field in nodes[0].selections:
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


@strawberry.type
class ProfileEdge:
    cursor: str
    node: Profile


@strawberry.type
class ProfileConnection:
    """A page of profiles; nodes, edges (with their cursors) and totalCount are built only when asked for."""

    page_info: PageInfo
    page: strawberry.Private[audiences.ProfilePage]

    @strawberry.field
    def nodes(self) -> list[Profile]:
        if self.page.nodes_json is not None:
            return SerializedList(self.page.nodes_json)
        return [Profile.from_row(row) for row in self.page.rows]

    @strawberry.field
    def edges(self) -> list[ProfileEdge]:
        page = self.page
        return [ProfileEdge(cursor=page.cursor(member_id), node=Profile.from_row(row))
                for member_id, row in zip(page.ids, page.rows, strict=True)]

    @strawberry.field
    async def total_count(self) -> int:
        return await self.page.count()

    @classmethod
    def of(cls, page: audiences.ProfilePage, after: str | None) -> ProfileConnection:
        ends = [page.cursor(member_id) for member_id in (page.ids[:1] + page.ids[-1:] if len(page.ids) > 1 else page.ids)]
        return cls(page_info=PageInfo.of(ends, page.has_next_page, after), page=page)


# ---------------------------------------------------------------- events


@strawberry.interface
class Event:
    id: strawberry.ID
    metric: str
    occurred_at: datetime
    channel: str | None
    properties: JSON
    profile_id: strawberry.Private[int]

    @strawberry.field
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


@strawberry.type
class StartedConversationEvent(Event):
    @strawberry.field
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field
    def initial_skill(self) -> str | None:
        return self._text("initial_skill")


@strawberry.type
class ConversationResolvedEvent(Event):
    @strawberry.field
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field
    def final_skill(self) -> str | None:
        return self._text("final_skill")

    @strawberry.field
    def tags(self) -> list[str]:
        return self._strings("tags")


@strawberry.type
class ConversationEscalatedEvent(Event):
    @strawberry.field
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field
    def escalation_reason(self) -> str | None:
        return self._text("escalation_reason")

    @strawberry.field
    def tags(self) -> list[str]:
        return self._strings("tags")


@strawberry.type
class ProductRecommendationEvent(Event):
    @strawberry.field
    def conversation_id(self) -> str:
        return self._text("conversation_id") or ""

    @strawberry.field
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


@strawberry.type
class EventEdge:
    cursor: str
    node: Event


@strawberry.type
class EventConnection:
    edges: list[EventEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Event]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: EventPage, after: str | None) -> EventConnection:
        edges = [EventEdge(cursor=page.cursor(row), node=event_from_row(row)) for row in page.rows]
        return cls(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], page.has_next_page, after))


# ---------------------------------------------------------------- segments


@strawberry.type
class Segment:
    id: strawberry.ID
    name: str
    description: str | None
    filter: JSON = strawberry.field(description="The filter as stored, in the SegmentFilter input shape.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Segment:
        return cls(
            id=strawberry.ID(str(row.id)), name=row.name, description=row.description, filter=row.filter,
            created_at=from_micros(row.created_at), updated_at=from_micros(row.updated_at),
        )

    @strawberry.field(description="The filter written in the text language.")
    def expression(self) -> str:
        return print_filter(filter_from_input(self.filter))

    @strawberry.field
    async def count(self, info: GraphQLInfo, as_of: datetime | None = None) -> int:
        audience = await self._audience(info, as_of)
        return await audiences.count_members(info.context.store, audience)

    @strawberry.field
    async def members(
        self, info: GraphQLInfo, first: int = 100, after: str | None = None, as_of: datetime | None = None
    ) -> ProfileConnection:
        return await audience_page(info, self.filter, as_of, first, after, ())

    @strawberry.field(description="Who entered and who left between two instants: ENTERED are the members at "
                      "asOf (default: now) that were not members at since, EXITED the reverse; in profile id order. "
                      "A campaign tool syncs its copy by asking for the changes since its last sync's asOf.")
    async def changes(
        self, info: GraphQLInfo, since: Annotated[datetime, SINCE], as_of: Annotated[datetime | None, CHANGES_AS_OF] = None,
        first: Annotated[int, CHANGES_FIRST] = 100, after: Annotated[str | None, CHANGES_AFTER] = None,
    ) -> AudienceChangeConnection:
        return await audience_changes(info, self.filter, since, as_of, first, after, ())

    async def _audience(self, info: GraphQLInfo, as_of: datetime | None) -> audiences.Audience:
        # Compiled from the stored filter already loaded: no second read of this segment.
        return await audiences.compile_filter(info.context.store, self.filter, as_of, (), info.context.paging.compiled)


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
    store, paging = info.context.store, info.context.paging
    audience = await audiences.compile_filter(store, filter_value, as_of, path, paging.compiled)
    return ProfileConnection.of(await audiences.read_page(store, audience, request, paging.policy), after)



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
    edges: list[AudienceChangeEdge] = strawberry.field(description="This page's changes, in profile id order.")
    page_info: PageInfo = strawberry.field(description="Whether more changes follow, and the cursors to ask for them.")
    found: strawberry.Private[changes.Changes]
    store: strawberry.Private[Any]
    counted: strawberry.Private[asyncio.Future[tuple[int, int]] | None] = None

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
    page = await changes.change_page(store, found, first, after, paging.policy)
    edges = [AudienceChangeEdge(cursor=page.cursor(row), change=AudienceChange(row[-1]),
                                node=Profile.from_row(row[:-1])) for row in page.rows]
    return AudienceChangeConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], page.has_next_page, after),
                                    found=found, store=store)
