"""The graphql-http audit of GraphQL over HTTP (`python -m tests.graphql_http_audit.run`, run by `.ci/run`)."""
