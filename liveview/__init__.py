"""The live view: a web page of the running exchange (LIMs, devices, calls, ACD groups, CSTA
sessions), updated as it changes, where a click works a phone. One process per cluster (`view`
under supervisord); see docs/operations.md, "The live view"."""
