"""The web viewer (`evalbatch view`): a read-only starlette app over the store, server-rendered
pages with a JSON mirror each, every asset served locally, loopback by default.

`view.server` serves it (`ViewServer`, `ViewConfig`, `serve`), `view.app` builds the app,
`view.pages` reads what each page shows; the package itself imports nothing, so `--help` stays
fast and no submodule depends on the package.
"""
