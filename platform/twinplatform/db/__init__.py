"""The database: typed SQLAlchemy models, sessions, migrations and queries (no commits inside queries)."""
