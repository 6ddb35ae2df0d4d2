"""One module per CLI command group: load what the command needs, call the modules that do the work, show the result.

Config errors surface before any cloud call: every command loads and validates the config
first and only then builds a client.
"""
