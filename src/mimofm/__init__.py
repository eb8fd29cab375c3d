"""mimofm: deep-learning precoding for the massive-MIMO downlink.

The public surface (``dir(mimofm)``), loaded on first use so that ``import mimofm`` stays cheap:

* :func:`load_precoder` (``name`` from :func:`precoder_names`) -> a :class:`PrecoderModule` (a
  ``torch.nn.Module``): SNR-scaled channel ``h`` ``[..., K, N]`` complex (torch, numpy or nested lists) ->
  precoder ``W`` ``[..., N, K]``, ``‖W‖_F² ≤ 1``.
* :func:`sum_rate` / :func:`user_rates`: ``(h [..., K, N], W [..., N, K])`` -> bit/s/Hz ``[...]`` /
  ``[..., K]`` at unit noise; :func:`total_power`: ``W [..., N, K]`` -> ``‖W‖_F²`` ``[...]``.
* :func:`load_channels`: a channel file (site ``.h5``, ``.npz``, ``.npy``, ``.mat``, HDF5) -> a channel set
  whose ``h`` is raw gains ``[num_positions, num_bs_ant]`` complex (scale with
  :class:`~mimofm.core.linkbudget.LinkBudget` before precoding).
* :func:`evaluate` (:class:`EvalConfig`): the paired evaluation of ``mimofm eval`` -> the result dict.
"""

__version__ = "0.1.0"
__all__ = [
    "EvalConfig",
    "LinkBudget",
    "MimofmInputError",
    "PrecoderModule",
    "__version__",
    "evaluate",
    "load_channels",
    "load_precoder",
    "precoder_names",
    "sum_rate",
    "total_power",
    "user_rates",
]


def __getattr__(name: str):  # lazy: `import mimofm` stays cheap for the CLI
    """The public names of :data:`__all__`, imported on first access (deferred imports: no torch models at
    ``import mimofm``)."""
    if name in ("PrecoderModule", "load_precoder", "precoder_names"):
        from mimofm import api as module
    elif name in ("sum_rate", "user_rates"):
        from mimofm.core import rates as module
    elif name == "total_power":
        from mimofm.core import energy as module
    elif name == "LinkBudget":
        from mimofm.core import linkbudget as module
    elif name == "MimofmInputError":
        from mimofm.core import errors as module
    elif name == "load_channels":
        from mimofm.channels import io as module
    elif name in ("EvalConfig", "evaluate"):
        from mimofm.evaluation import evaluate as module
    else:
        raise AttributeError(f"module 'mimofm' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # cached: later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    """``dir(mimofm)``: the public names (and the module's own attributes)."""
    return sorted(set(globals()) | set(__all__))
