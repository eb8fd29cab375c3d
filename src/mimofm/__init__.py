"""mimofm: deep-learning precoding for the massive-MIMO downlink.

``mimofm.load_precoder(name)`` returns a precoder as a callable (see :mod:`mimofm.api`);
``mimofm.sum_rate`` and ``mimofm.total_power`` measure its output.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "load_precoder", "sum_rate", "total_power", "user_rates"]


def __getattr__(name: str):  # lazy: `import mimofm` stays cheap for the CLI
    if name == "load_precoder":
        from mimofm.api import load_precoder  # deferred: keeps `import mimofm` cheap (no torch models)

        return load_precoder
    if name in ("sum_rate", "user_rates"):
        from mimofm.core import rates  # deferred: as above

        return getattr(rates, name)
    if name == "total_power":
        from mimofm.core.energy import total_power  # deferred: as above

        return total_power
    raise AttributeError(f"module 'mimofm' has no attribute {name!r}")
