"""The command line: a thin layer over app.core."""
