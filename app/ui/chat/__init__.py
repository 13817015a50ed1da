"""The Chat view: conversations, a streaming transcript, the composer and the sampling panel."""
