"""The `mxone` command line (and `csta`, `csta_authentication`, `mxone_certificate`): one module per
command group; main.py builds the parser and dispatches."""
