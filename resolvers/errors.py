"""Errors that a client caused, each with a GraphQL error code and the input path at fault."""

from __future__ import annotations

from collections.abc import Sequence

InputPath = tuple[str | int, ...]


class UserInputError(Exception):
    """Bad input: reported as a GraphQL error with `extensions.code` and `extensions.inputPath`."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, input_path: Sequence[str | int] = (), details: object = None):
        super().__init__(message)
        self.message = message
        self.input_path: InputPath = tuple(input_path)
        self.details = details

    @property
    def extensions(self) -> dict[str, object]:
        """Copied by graphql-core into the GraphQL error it reports."""
        out: dict[str, object] = {"code": self.code, "inputPath": list(self.input_path)}
        if self.details is not None:
            out["details"] = self.details
        return out

    def under(self, *prefix: str | int) -> UserInputError:
        """The same error, its input path nested below `prefix`."""
        moved = type(self)(self.message, (*prefix, *self.input_path), self.details)
        return moved


class NotFoundError(UserInputError):
    code = "NOT_FOUND"


class QueryTooComplexError(UserInputError):
    """A request past a limit on its size or cost, found before it ran."""

    code = "QUERY_TOO_COMPLEX"


class QueryTimeoutError(UserInputError):
    """An audience query ran past the statement timeout; a narrower filter or a later retry may pass."""

    code = "QUERY_TIMEOUT"
