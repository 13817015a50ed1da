"""GGUF models: metadata, the registry of model files, the runner (llama.cpp), the default model."""
