"""Ways to put a program on a device, run it and bring back what it measured."""
