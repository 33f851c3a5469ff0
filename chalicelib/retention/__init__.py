"""How long each kind of record is kept, and the archive that keeps it once it leaves the hot tables.

docs/alerts-and-retention.md has the policy; ``policy`` the figures, ``archive`` the store and the lookup by id,
``sweep`` the daily job that moves settled records out of DynamoDB.
"""
