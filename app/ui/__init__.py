"""The desktop window: widgets and views only; work happens in app.core through app.workers."""
