"""Words every layer shares: the Customer Agent metrics and how instants are written and stored."""
