"""The PostgreSQL store (``pip install 'stepstone[postgres]'``): see :mod:`.store`."""
