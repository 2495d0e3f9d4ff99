"""The prediction-powered estimator (analysis/ppi.py): equal to ppi-python's on fixed data, and
as a statistical test over 100 seeded repetitions of the reference-sampled grading setting: its
95% interval covers the true reference pass rate at least 93 times and is narrower than the
interval of the reference sample alone."""

from __future__ import annotations

import numpy as np
import pytest

from evalbatch.analysis.ppi import classical_mean, ppi_mean, tuned_lambda
from evalbatch.graders.reference import in_sample


def binary_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1,000 cases, 62% pass, the cheap grader flips 5%, every 10th case labeled."""
    i = np.arange(1000)
    y = ((i * 37) % 100 < 62).astype(float)
    f = np.where((i * 53) % 100 < 5, 1 - y, y)
    labeled = i % 10 == 0
    return y[labeled], f[labeled], f


def score_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """600 cases with 1..5 scores, the cheap grader off by +1 or -2 on some."""
    i = np.arange(600)
    y = ((i * 31) % 5 + 1).astype(float)
    f = y + np.where((i * 17) % 7 == 0, 1.0, 0.0) - np.where((i * 11) % 13 == 0, 2.0, 0.0)
    labeled = (i % 6) == 1
    return y[labeled], f[labeled], f


# Computed with ppi-python 0.2.3 (ppi_py.ppi_mean_pointestimate, ppi_mean_ci with alpha=0.05,
# with lam tuned and with lam=1, and ppi_py.baselines.classical_mean_ci) on the sets above.
PPI_PY = {
    "binary": {
        "point": 0.6932369230769231,
        "ci": (0.6353042705347962, 0.75116957561905),
        "ci_lam1": (0.6237688756901212, 0.7562311243098787),
        "classical": (0.6101831668145794, 0.7898168331854205),
    },
    "scores": {
        "point": 2.9976712257748686,
        "ci": (2.845303583570875, 3.150038867978862),
        "ci_lam1": (2.8179401916927618, 3.1753931416405714),
        "classical": (2.7228192351300646, 3.2771807648699354),
    },
}


@pytest.mark.parametrize("name,data", [("binary", binary_set()), ("scores", score_set())])
def test_equals_ppi_python(name: str, data: tuple[np.ndarray, ...]) -> None:
    expected = PPI_PY[name]
    est = ppi_mean(*data)
    assert est.ppi.estimate == pytest.approx(expected["point"], rel=1e-12)
    assert (est.ppi.low, est.ppi.high) == pytest.approx(expected["ci"], rel=1e-12)
    assert (est.classical.low, est.classical.high) == pytest.approx(expected["classical"])
    plain = ppi_mean(*data, lam=1.0)
    assert (plain.ppi.low, plain.ppi.high) == pytest.approx(expected["ci_lam1"], rel=1e-12)
    assert 0.0 <= est.lam <= 1.0


def test_lambda_zero_is_the_reference_sample_alone() -> None:
    y, f, f_all = binary_set()
    est = ppi_mean(y, f, f_all, lam=0.0)
    alone = classical_mean(y)
    assert (est.ppi.estimate, est.ppi.low, est.ppi.high) == pytest.approx(
        (alone.estimate, alone.low, alone.high)
    )


def test_a_cheap_grader_that_never_varies_gets_no_weight() -> None:
    y = np.array([1.0, 0.0, 1.0, 1.0])
    assert tuned_lambda(y, np.ones(4), np.ones(40)) == 0.0


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="two reference labels"):
        ppi_mean([1.0], [1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="3 reference labels but 2"):
        ppi_mean([1.0, 0.0, 1.0], [1.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        ppi_mean([1.0, float("nan")], [1.0, 0.0], [1.0, 0.0])


def one_repetition(seed: int, n_cases: int = 2000, flip: float = 0.03, sample: float = 0.1):
    """A run as reference-sampled grading sees it: the reference's verdict on every case (the
    truth here), a cheap grader that disagrees on ``flip`` of them, and the reference sample the
    suite's seeded hash picks."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n_cases) < 0.7).astype(float)
    cheap = np.where(rng.random(n_cases) < flip, 1.0 - truth, truth)
    labeled = np.array([in_sample(f"case-{i:05d}", sample, seed) for i in range(n_cases)])
    est = ppi_mean(truth[labeled], cheap[labeled], cheap)
    return est, float(truth.mean())


def test_coverage_and_width_over_100_seeded_repetitions() -> None:
    covered, ppi_width, alone_width = 0, [], []
    for seed in range(100):
        est, true_rate = one_repetition(seed)
        covered += est.ppi.low <= true_rate <= est.ppi.high
        ppi_width.append(est.ppi.width)
        alone_width.append(est.classical.width)
    print(
        f"coverage {covered}/100, mean width {np.mean(ppi_width):.4f} "
        f"vs {np.mean(alone_width):.4f} for the reference sample alone"
    )
    assert covered >= 93
    assert np.mean(ppi_width) < 0.6 * np.mean(alone_width)
    assert sum(p < a for p, a in zip(ppi_width, alone_width, strict=True)) >= 95
