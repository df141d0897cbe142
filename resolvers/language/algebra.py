"""Boolean algebra on filter trees: the same audience from fewer nodes.

A filter and its simplified form hold for exactly the same profiles at every instant: `and`/`or`
nested in their own kind are flattened, repeated items kept once, `not not X` is X, and absorption
drops what another item already decides (`X or (X and Y)` is X, `X and (X or Y)` is X). Saved
segments that name each other along many paths mostly collapse to one path this way.
"""

from __future__ import annotations

from resolvers.language import ast


def simplified(node: ast.Filter) -> ast.Filter:
    """The filter with the same members, simplified bottom-up."""
    match node:
        case ast.Not(item):
            inner = simplified(item)
            return inner.item if isinstance(inner, ast.Not) else ast.Not(inner)
        case ast.And(items):
            return _combined(ast.And, ast.Or, [simplified(item) for item in items])
        case ast.Or(items):
            return _combined(ast.Or, ast.And, [simplified(item) for item in items])
    return node


def _combined(
    kind: type[ast.And] | type[ast.Or], dual: type[ast.And] | type[ast.Or], items: list[ast.Filter]
) -> ast.Filter:
    """`kind` of `items`: flattened, each item once, absorbed items dropped; a single item stands alone."""
    flat: list[ast.Filter] = []
    for item in items:
        for part in item.items if isinstance(item, kind) else (item,):
            if part not in flat:
                flat.append(part)
    # X kind (X dual Y) is X: an item of the dual kind holding another item of this one adds nothing.
    kept = [item for item in flat if not (isinstance(item, dual) and any(other in item.items for other in flat))]
    return kept[0] if len(kept) == 1 else kind(tuple(kept))
