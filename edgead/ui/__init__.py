"""The operator page: ``edgead ui STATION.yaml``, a process of its own beside the daemon.

It reads the station's record store through a read-only SQLite connection (a WAL reader never blocks the daemon's
writer) and serves the archived images; the daemon's hot loop does not pay for it. Writing a label is the one write
action, and it needs an operator's name and password (``ui.operators_file``, scrypt hashes). Starlette serves it
through uvicorn (``pip install 'edgead[ui]'``); the page is plain HTML, CSS and JavaScript shipped in the package
(``edgead/ui/static``), updated live through server-sent events.
"""
