"""The OpenAI-compatible local endpoint: every request goes through the runner and is logged."""
