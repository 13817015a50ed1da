"""Tool calling: what a request offers the model (spec), how the model is told (prompt), how its
answer is constrained (grammar) and read back (calls). Endpoint-neutral: the server's OpenAI,
Responses and Anthropic translations all build a ToolSpec."""
