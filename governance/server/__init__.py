"""`privgov serve`: the authenticated HTTP service (FastAPI on uvicorn).

Why a thin adapter: the server must decide and audit exactly as the CLI does,
so routes parse a request, call the one function the CLI calls
(`governance.access.authorize`, `governance.access.export`, `governance.api`,
`governance.evidence`) and shape the answer. Nothing here decides on its own.

    from governance.server.app import create_app, ServerSettings
    app = create_app(Path(".privgov"), ServerSettings())

FastAPI is imported only by the modules of this package, never by `privgov --help`.
"""
