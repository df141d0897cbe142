"""Extensions of the schema's request handling (see schema/limits.py for the request limits)."""
