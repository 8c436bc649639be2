"""PostgreSQL storage: pool, embedded server, migrations, one module per table."""

from simcore.store.database import Database

__all__ = ["Database"]
