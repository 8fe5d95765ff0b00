"""Models: the architectures (mnist, transfer) and their cards (cards imports no Keras)."""
