"""Apps served by the serving tests, importable by servers started in a subprocess."""
