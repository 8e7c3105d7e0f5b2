"""The load and measurement tools: `mxone bench`, `mxone scale`, `mxone chaos`, `mxone traffic`,
`mxone scenario`, and the pytest plugin for users' own test suites."""
