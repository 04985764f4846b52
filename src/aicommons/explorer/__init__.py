"""The explorer: an indexer that follows a deployment's contract logs into SQLite, and a web app
(FastAPI, Jinja2, htmx) whose pages and JSON API are queries over that index.

It reads the chain and storage only through the SDK and the index; it never signs anything.
"""
