"""interprior: physics-based human-object interaction on MuJoCo."""

__version__ = "0.1.0"
