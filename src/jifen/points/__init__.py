"""The ledger's faces (the ledger itself knows no HTTP or CLI): `jifen ledger` commands."""
