"""Model registries: MNIST CNNs from scratch (mnist.py), transfer learning (transfer.py)."""
