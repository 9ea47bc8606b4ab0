"""SQL as SQLAlchemy Core over schemas/tables.py, one function per question, bound parameters only.

The engine runs in autocommit (api/app.py): each statement sees one consistent snapshot, and the
consumer writes trades and their rollups in one transaction, so a statement never sees a trade
without its candle.
"""
