"""Steering a Stage II prior with goals from the caller: the `Steering` object (set goals, step, read state,
record), validated world-frame goals, and JSON-lines goal scripts (`interprior steer --headless --script`)."""
