"""The Server view: the local OpenAI-compatible server and its API keys."""
