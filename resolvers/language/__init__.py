"""The segment filter language, pure: its tree, the structured input, the text form and the limits. No SQL, no I/O."""
