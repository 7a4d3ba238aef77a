"""``matdiff serve``: a local web page and JSON API for matdiff.

:mod:`matdiff.web.api` answers requests as plain functions (no server needed),
:mod:`matdiff.web.pool` runs them in worker processes under a time limit,
:mod:`matdiff.web.server` is the Starlette application and the command, and
``static/`` holds the page (KaTeX is copied in when the package is built).
Installing the ``[web]`` extra brings Starlette and uvicorn.
"""
