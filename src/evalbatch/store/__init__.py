"""The store: the only package that speaks SQL. `db.open_store` gives the Store handle; its
parts own every statement; reads return the typed records of `store.records`."""
