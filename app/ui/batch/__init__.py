"""The Batch view: synthetic-data batch runs with a template editor, progress and output rows."""
