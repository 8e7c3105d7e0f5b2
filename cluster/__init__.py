"""Running clusters: the supervisord configuration and control of an exchange, and the one way
to start and stop one (cluster/exchange.py) that the CLI, the tools, the pytest plugin and the tests use."""
