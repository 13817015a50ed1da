"""The Models view: registered GGUF files, their metadata, and loading one with chosen options."""
