"""Queries, one module per table. Each function takes a connection and runs Core statements on
it; none commits (`app/db/database.py` owns the transaction).

Core, not ORM sessions: per request, ORM entities (identity map, instance state, the unit of
work's flush) cost more CPU than the query's round trip and give this API nothing, since every
route is one statement or two. Statements select and return whole tables, so a new column needs
no change here; rows are read by column name, as entities would be. The figures are in
docs/performance.md.
"""
