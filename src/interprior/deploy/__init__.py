"""Deploying a Stage II prior outside interprior: one ONNX graph from MuJoCo-level state and a goal to PD joint
targets (`graph`), its files and contract (`export`); the standalone loop is `examples/deploy_loop.py`."""
