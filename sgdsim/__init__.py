"""sgdsim: simulate SGD as a cloud of particles and hold it against theory."""
__version__ = "0.1.0"
