"""Regenerate the bundled synthetic sites in src/mimofm/assets/sites (deterministic)."""

from pathlib import Path

from mimofm.channels.io import save_channels_npz
from mimofm.channels.synthetic import BUNDLED_SYNTHETIC, generate_site

out = Path(__file__).resolve().parents[1] / "src" / "mimofm" / "assets" / "sites"
for site in BUNDLED_SYNTHETIC:
    cs = generate_site(site)
    cs.meta["command"] = "python scripts/make_bundled_sites.py"
    save_channels_npz(out / f"{site.name}.npz", cs)
    print(out / f"{site.name}.npz", tuple(cs.h.shape), f"LOS {float(cs.los.float().mean()):.2f}")
