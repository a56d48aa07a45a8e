"""Workflow apps that real worker processes serve in the crash tests."""
