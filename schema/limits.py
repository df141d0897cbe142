"""Limits on what one GraphQL request may ask for, checked before anything runs.

- tokens: at most MAX_TOKENS in the document (Strawberry's MaxTokensLimiter: the parser stops there);
- depth: at most MAX_DEPTH levels of fields (the rule of Strawberry's QueryDepthLimiter; introspection
  is not counted);
- aliases: at most MAX_ALIASES (the rule of Strawberry's MaxAliasesLimiter);
- cost: at most MAX_COST (QueryCostLimiter below), where a field costs 1 plus its children, and a
  connection field (one with a `first` argument: profiles, events, members, conversations,
  activity) multiplies its children's cost by `first` (its schema default when not given). So
  1000 profiles with 1000 events each cost about two million and are refused; a page of 100
  profiles with their last 50 events each costs about 20,000. Lists without `first` count once;
- size: at most MAX_SELECTIONS field selections once fragments are expanded (GraphiQL's whole
  introspection query has 229).

Every refusal has `extensions.code = "QUERY_TOO_COMPLEX"`, given where it is made: by the parser at the
token limit (`parse_document`), by the depth and alias rules (their validation errors carry it, see
schema/extensions/errors.py) and by QueryCostLimiter.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValuesOfCorrectTypeRule,
    VariableNode,
    get_named_type,
    parse,
    validate,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from resolvers.language.limits import MAX_PAGE as MAX_PAGE_SIZE
from resolvers.language.structured import one_of_message
from schema.extensions.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    QUERY_TOO_COMPLEX,
    ErrorPolicy,
    coded_rules,
    with_code,
)
from schema.extensions.warnings import ResponseWarnings

MAX_TOKENS = 10_000
MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_COST = 50_000
MAX_SELECTIONS = 2_000
TOO_COMPLEX = QUERY_TOO_COMPLEX


def parse_document(query: str, max_tokens: int | None = MAX_TOKENS) -> DocumentNode:
    """The parsed query, cached (syntax errors too): the access check and execution parse a text once."""
    parsed = _parse(query, max_tokens)
    if isinstance(parsed, GraphQLError):
        raise parsed.with_traceback(None)
    return parsed


@functools.lru_cache(maxsize=256)
def _parse(query: str, max_tokens: int | None) -> DocumentNode | GraphQLError:
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLError as error:
        return with_code(error, TOO_COMPLEX if _past_token_limit(query, max_tokens, error) else GRAPHQL_PARSE_FAILED)


def _past_token_limit(query: str, max_tokens: int | None, error: GraphQLError) -> bool:
    """Whether the parser stopped at the token limit, rather than at a mistake in the text: allowed one more
    token, it would not fail the same way (a mistake is where it is whatever the limit)."""
    if max_tokens is None:
        return False
    try:
        parse(query, max_tokens=max_tokens + 1)
    except GraphQLError as again:
        return (again.message, again.positions) != (error.message, error.positions)
    return True


class CachedParser(SchemaExtension):
    """Parses through `parse_document`, so that a query's text parsed for its scopes is not parsed again."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            context.graphql_document = parse_document(context.query, context.parse_options.get("max_tokens"))
        yield


class QueryCostLimiter(SchemaExtension):
    """Refuses, before validation, an operation above `max_cost` or above MAX_SELECTIONS once fragments are expanded.

    It runs before the validation rules because those (Strawberry's depth and alias limits among
    them) walk fragments anew at every spread: a few nested fragments each spread twice would make
    them work exponentially long. Counting with each fragment costed once keeps this check linear.
    """

    def __init__(self, max_cost: int = MAX_COST, max_selections: int = MAX_SELECTIONS) -> None:
        self.max_cost = max_cost
        self.max_selections = max_selections

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            cost, selections = query_cost(context.schema._schema, context.graphql_document, context.variables or {},
                                          context.operation_name)
            if selections > self.max_selections:
                context.pre_execution_errors = [GraphQLError(
                    f"the query selects {selections} fields once its fragments are expanded, more than the maximum "
                    f"of {self.max_selections}", extensions={"code": TOO_COMPLEX})]
            elif cost > self.max_cost:
                context.pre_execution_errors = [GraphQLError(
                    f"the query costs {cost}, more than the maximum of {self.max_cost}: ask for fewer items "
                    "(`first`) in nested connections, or page through them",
                    extensions={"code": TOO_COMPLEX, "cost": cost, "maxCost": self.max_cost})]
        yield


class CachedValidation(SchemaExtension):
    """Validation, cached like Strawberry's ValidationCache, with each rule's errors carrying its code
    (schema/extensions/errors.py); run after QueryCostLimiter and never over a refusal of it. With
    `hide_suggestions`, errors name no field or type the client did not write ("Did you mean …?")."""

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        self.hide_suggestions = hide_suggestions

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.pre_execution_errors and context.graphql_document is not None:
            context.pre_execution_errors = _validate(context.schema._schema, context.graphql_document,
                                                     context.validation_rules, self.hide_suggestions)
        yield


@functools.lru_cache(maxsize=128)
def _validate(schema: GraphQLSchema, document: DocumentNode, rules: tuple[type[ASTValidationRule], ...],
              hide_suggestions: bool) -> list[GraphQLError]:
    # The rules Strawberry's own validation adds to the execution context's (`validate_document`).
    coded = coded_rules((*rules, MaybeNullValidationRule, OneOfNamingKeys), RULE_CODES)
    return validate(schema, document, coded, hide_suggestions=hide_suggestions)


def operations_and_fragments(
    document: DocumentNode, operation_name: str | None
) -> tuple[list[OperationDefinitionNode], dict[str, FragmentDefinitionNode]]:
    """The operations that may run (the named one, else all of them) and the document's fragments by name."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    named = [op for op in operations if op.name is not None and op.name.value == operation_name]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    return named or operations, fragments


def query_cost(schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any],
               operation_name: str | None = None) -> tuple[int, int]:
    """(cost, selections once fragments are expanded) of the costliest operation that may run."""
    operations, fragments = operations_and_fragments(document, operation_name)
    found = [_Coster(schema, fragments, variables, op).operation_cost() for op in operations]
    return max(found, default=(0, 0))


Cost = tuple[int, int]  # (cost, selections)


class _Coster:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: Mapping[str, Any], operation: OperationDefinitionNode) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.operation = operation
        self.fragment_costs: dict[str, Cost] = {}  # a fragment costs the same wherever it is spread
        self.visiting: set[str] = set()

    def operation_cost(self) -> Cost:
        return self.selection_cost(self.operation.selection_set, self.schema.get_root_type(self.operation.operation))

    def selection_cost(self, selection_set: SelectionSetNode, parent: Any) -> Cost:
        cost = selections = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                found = self.field_cost(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                found = self.selection_cost(selection.selection_set, inner)
            elif isinstance(selection, FragmentSpreadNode):
                found = self.fragment_cost(selection.name.value)
            cost, selections = cost + found[0], selections + found[1]
        return cost, selections

    def fragment_cost(self, name: str) -> Cost:
        if name in self.fragment_costs:
            return self.fragment_costs[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:  # unknown or cyclic: validation refuses the document
            return 0, 0
        self.visiting.add(name)
        found = self.selection_cost(fragment.selection_set, self.schema.get_type(fragment.type_condition.name.value))
        self.visiting.discard(name)
        self.fragment_costs[name] = found
        return found

    def field_cost(self, node: FieldNode, parent: Any) -> Cost:
        definition = getattr(parent, "fields", {}).get(node.name.value) if parent is not None else None
        child_type = get_named_type(definition.type) if definition is not None else None
        if node.selection_set is None:
            return 1, 1
        # An unknown field's children are counted (as if their parent were unknown too): validation refuses them.
        cost, selections = self.selection_cost(node.selection_set, child_type)
        if definition is not None and "first" in definition.args:
            cost *= self.first(node, definition.args["first"].default_value)
        return 1 + cost, 1 + selections

    def first(self, node: FieldNode, default: Any) -> int:
        value: Any = default
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variable(argument.value.name.value, default)
        if not isinstance(value, int) or isinstance(value, bool):
            value = MAX_PAGE_SIZE
        # Outside 1…1000 the field itself refuses the value, with BAD_USER_INPUT and its path.
        return max(1, min(value, MAX_PAGE_SIZE))

    def variable(self, name: str, default: Any) -> Any:
        if name in self.variables:  # null given explicitly means the field's default, as `first: null` does
            return default if self.variables[name] is None else self.variables[name]
        for definition in self.operation.variable_definitions or ():
            if definition.variable.name.value == name and isinstance(definition.default_value, IntValueNode):
                return int(definition.default_value.value)
        return default


# Built once: Strawberry's QueryDepthLimiter and MaxAliasesLimiter build new rule classes for every
# request, and since the validation cache is keyed by the rules, it then never hits (validating a
# page query anew cost ~5 ms a request).
LIMIT_RULES: list[type[ASTValidationRule]] = [depth_rule(MAX_DEPTH, None, None), aliases_rule(MAX_ALIASES)]
# The rules whose errors are not GRAPHQL_VALIDATION_FAILED: a bad value of an argument, a limit.
class OneOfNamingKeys(OneOfInputValidationRule):
    """Strawberry's @oneOf rule, whose refusal of no key or several names the keys it takes and was given."""

    def validate_one_of(self, node: ObjectValueNode, type: GraphQLNamedType) -> None:
        given = [field.name.value for field in node.fields]
        if len(given) == 1 or not isinstance(type, GraphQLInputObjectType):
            super().validate_one_of(node, type)
            return
        self.report_error(GraphQLError(one_of_message(type.name, list(type.fields), given), nodes=[node]))


RULE_CODES: dict[type[ASTValidationRule], str] = {
    ValuesOfCorrectTypeRule: BAD_USER_INPUT, MaybeNullValidationRule: BAD_USER_INPUT,
    OneOfNamingKeys: BAD_USER_INPUT, **dict.fromkeys(LIMIT_RULES, TOO_COMPLEX),
}


def extensions(introspection: bool = True) -> list[Callable[[], SchemaExtension]]:
    """The schema's extensions, as factories (Strawberry makes them anew for every request)."""
    from strawberry.extensions import DisableIntrospection

    found: list[Callable[[], SchemaExtension]] = [
        ErrorPolicy,  # first: it sees what every other extension reports or raises
        functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        CachedParser,
        functools.partial(AddValidationRules, LIMIT_RULES),
        QueryCostLimiter,
        # Without introspection, suggestions would tell the schema's names all the same.
        functools.partial(CachedValidation, hide_suggestions=not introspection),
        ResponseWarnings,
    ]
    if not introspection:
        found.append(DisableIntrospection)
    return found
