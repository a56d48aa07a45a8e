"""What runs the engine inside a process: the claim loop, leases, threads, process identity.

Shared by the worker and the in-process client; uses the ``Store`` port, never an adapter.
"""
