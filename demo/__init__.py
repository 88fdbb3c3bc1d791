"""The demo: synthetic source files for five systems (`demo.data`) and the commands that
generate and load them. Not part of the production apps: nothing in `mdm`, `matching`, `api`
or `stewardship` imports it."""
