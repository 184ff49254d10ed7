"""The ledger's faces (the ledger itself knows no HTTP or CLI): the points API (/v1/points, /v1/holds,
/v1/entries) and the `jifen ledger` commands."""
