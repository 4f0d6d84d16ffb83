"""double-well with its Fokker–Planck density beside the particles: at a small learning rate (SGD bias
negligible) the particle histogram is a sample of the PDE density at every recorded time (Pearson chi-square
within 5 of its standard deviations), while a PDE at a 15% wrong temperature is rejected by far."""
from __future__ import annotations

import numpy as np
from cli_helpers import sgdsim_cli

import sgdsim
from sgdsim import fokker_planck

# T = lr spread^2 / (2B) = 0.002 * 500 / 4 = 0.25, as in the default run, at a 10x smaller lr
SMALL_LR = ["lr=0.002", "spread=22.3607", "particles=4000", "steps=4000", "record_every=1000"]


def chi_square(counts, q):
    """Pearson statistic over the bins with at least 5 expected counts (the rest pooled), and its dof."""
    m = counts.sum()
    keep = m * q >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    exp = np.append(m * q[keep], m * q[~keep].sum())
    ok = exp > 0
    return float(np.sum((obs[ok] - exp[ok]) ** 2 / exp[ok])), int(ok.sum() - 1)


def test_particles_match_their_pde_within_sampling_error(tmp_path):
    out = tmp_path / "dw.h5"
    result = sgdsim_cli("run", "double-well", "--preset", "small", "--set", *SMALL_LR, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Fokker–Planck PDE beside the particles" in result.stdout and out.with_suffix(".png").exists()
    with sgdsim.open(out) as run:
        hist, binned, field = run.element("density"), run.element("pde_density_binned"), run.element("pde_density")
        m = run.params["particles"]
        assert field.value.shape == (5, 600) and len(field.coords["x"]) == 600
        assert np.allclose(field.time, hist.time) and np.allclose(hist.time, hist.step * 0.002)
        widths = np.diff(run.element("density").attrs["edges"])
        np.testing.assert_allclose((field.value * (5 / 600)).sum(axis=1), 1.0, atol=1e-12)  # mass
        temperature = run.theory("gibbs").attrs["temperature"]
        comp = run.comparison
        for key in ("l1_particles_pde_final", "l1_sampling_expected_final", "kl_particles_pde_final"):
            assert np.isfinite(comp[key])
        edges = run.element("density").attrs["edges"]
        for i in range(1, len(hist.time)):
            counts = np.round(hist.value[i] * widths * m)
            stat, dof = chi_square(counts, binned.value[i] * widths)
            assert abs(stat - dof) < 5 * np.sqrt(2 * dof), (hist.time[i], stat, dof)
    # the test has power: the PDE at 1.15 T (same start, same times) is rejected at the last time
    fp = fokker_planck.problem(loss=lambda x: (x[:, 0] ** 2 - 1) ** 2, temperature=1.15 * temperature,
                               lo=-2.5, hi=2.5, cells=600)
    wrong = fp.evolve(fp.point_mass([-1.0]), hist.time, 0.02).density[-1]
    stat, dof = chi_square(counts, fp.bin_probabilities(wrong, edges))
    assert stat - dof > 10 * np.sqrt(2 * dof), stat
