"""Trainable models, losses, data and the generic SGD step that becomes a circuit."""
