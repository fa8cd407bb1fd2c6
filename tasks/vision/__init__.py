"""Image-classification tasks: Fashion-MNIST, CIFAR-10, CIFAR-100."""
