"""ONNX export of the deployable Stage II policy (prior + decoder, no encoder) and its check with onnxruntime.

The graph's inputs and outputs (batch dimension dynamic):

=================  ===============  ==========================================================
name               shape            meaning
=================  ===============  ==========================================================
``state_obs``      [N, S]           `interprior.mdp.self_observation.self_observation`
``goal_features``  [N, K, F]        `Goal.features()` (masked residuals; hidden entries zero)
``goal_bits``      [N, K, G]        given components as 0/1 floats
``goal_time``      [N, K]           seconds to each token's target
``eps``            [N, d_z]         the episode's latent noise (zeros: the prior's mean direction)
``subtask``        [N] int64        the subtask token id (`interprior.models.prior.SUBTASKS`: 0 none, 1 get up)
``action``         [N, A]           the action (the env's absolute PD-target mapping)
=================  ===============  ==========================================================
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from interprior.errors import InterpriorError
from interprior.files import atomic_path

INPUT_NAMES = ("state_obs", "goal_features", "goal_bits", "goal_time", "eps", "subtask")


def example_inputs(model, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the graph's shapes (some goal tokens fully hidden; subtask ids alternate 0 and 1)."""
    g = torch.Generator().manual_seed(seed)
    layout = model.layout
    k, f, gb = layout.num_tokens, layout.feature_size, layout.bit_size
    bits = (torch.rand(batch, k, gb, generator=g) < 0.3).float()
    bits[:, 0] = 0.0  # one padded token
    mask = bits.index_select(-1, layout.entry_group)
    return (torch.randn(batch, model.state_dim, generator=g), torch.randn(batch, k, f, generator=g) * mask, bits,
            torch.rand(batch, k, generator=g) * 3.0, torch.randn(batch, model.cfg.latent_dim, generator=g),
            torch.arange(batch) % 2)


def check_output_file(out: str | Path, option: str = "--out", force: bool = True, example: str = "prior.onnx") -> Path:
    """`out` as a file to write: InterpriorError naming `option` when it is a folder (or ends in a separator), and,
    unless `force`, when it exists."""
    text = os.fspath(out)
    out = Path(out)
    if text.endswith(("/", os.sep)) or out.is_dir():
        raise InterpriorError(f"{option} {text}: is a folder; give the file to write, e.g. {out / example}")
    if not force and (out.exists() or out.is_symlink()):
        raise InterpriorError(f"{option} {text}: the file exists; pass --force to overwrite")
    return out


def export_onnx(model, out: str | Path, opset: int = 17, force: bool = True) -> Path:
    """Write the prior + decoder graph of `model` (a `MaskedGoalPrior`) to `out`, atomically, with the mode the umask
    gives a new file. InterpriorError naming `out` when it is a folder or, unless `force`, an existing file."""
    import warnings

    out = check_output_file(out, force=force)
    graph = model.inference_graph(every_row=True).eval()
    batch = {0: "batch"}
    try:
        with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(graph, example_inputs(model), str(tmp), input_names=list(INPUT_NAMES),
                              output_names=["action"], dynamic_axes={n: batch for n in (*INPUT_NAMES, "action")},
                              opset_version=opset, dynamo=False)
    except OSError as e:
        raise InterpriorError(f"--out {out}: cannot write ({e.strerror or e})") from None
    return out


def onnxruntime_problem() -> str | None:
    """Why the ONNX check cannot run here, or None."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime, or pip install -e '.[onnx]')"
    return None


def onnx_session(model, threads: int = 1):
    """An onnxruntime CPU session of `model`'s prior + decoder graph (exported through a temporary file)."""
    problem = onnxruntime_problem()
    if problem:
        raise ImportError(problem)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model.cpu(), Path(tmp) / "prior.onnx")
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def max_difference(model, path: str | Path, batch: int = 8, seed: int = 1) -> float:
    """Largest |action_onnx − action_torch| on random inputs (onnxruntime, CPU)."""
    import onnxruntime as ort

    inputs = example_inputs(model, batch=batch, seed=seed)
    with torch.no_grad():
        expected = model.inference_graph().eval()(*inputs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["action"], {n: x.numpy() for n, x in zip(INPUT_NAMES, inputs)})[0]
    return float((torch.from_numpy(got) - expected).abs().max())
