"""The store: tables, engines and their dialects, one-trip reads and writes, derived tables, migrations."""
