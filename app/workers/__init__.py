"""Qt adapters: run core generators and the model on threads, re-emit what they yield as signals."""
