"""The ``stepstone`` command (entry point :func:`stepstone.cli.main.main`).

``main`` parses, dispatches and maps errors to exit codes; ``parser`` declares every flag;
``operate``/``observe``/``admin`` implement the commands through the client; ``render`` prints
for people, ``stepstone.client.shapes`` for machines (shared with the web API); ``app`` loads
``--app``; ``inputs`` parses JSON flags.
"""
