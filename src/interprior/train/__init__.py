"""Training infrastructure: checkpoints and run directories, progress/TensorBoard logging, torchrun helpers.

Submodules are imported explicitly (``interprior.train.checkpoint`` …) so that importing one does not pull in
TensorBoard or torch.distributed set-up.
"""
