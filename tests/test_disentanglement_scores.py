"""The six disentanglement scores (vae_jax.disentanglement) on constructed representations of a toy
ground truth whose observations are its factors: the factors themselves (permuted and scaled) score
at or near each score's maximum, a rotation of them lower, noise near chance; and each score's last
step against a value computed by hand."""

import math

import numpy as np
import pytest

from vae_jax import disentanglement
from vae_jax.disentanglement import informational, intervened

SMALL = {
    "beta_vae": {"batch": 16, "n_train": 600, "n_eval": 300},
    "factor_vae": {"batch": 16, "n_train": 600, "n_eval": 300, "n_variance": 1000},
    "mig": {"n_train": 2000},
    "dci": {"n_train": 600, "n_test": 300},
    "modularity": {"n_train": 2000, "n_test": 500},
    "sap": {"n_train": 600, "n_test": 300},
}


class Toy(disentanglement.Factors):
    """Three factors of 4, 5 and 6 values; an observation is its factors' values."""

    factor_sizes = (4, 5, 6)
    factor_names = ("a", "b", "c")

    def observations(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, np.float64)


def exact(x):
    """The factors permuted and scaled: a perfectly disentangled representation."""
    return x[:, [2, 0, 1]] * np.array([0.5, 3.0, -2.0]) + 1.0


ROTATION = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]


def rotated(x):
    """The standardised factors, rotated: every code mixes every factor."""
    return ((x - x.mean(0)) / x.std(0)) @ ROTATION


def noise(x):
    return np.random.default_rng(len(x) + int(x.sum())).normal(size=(len(x), 3))


@pytest.fixture(scope="module")
def measured():
    return {f.__name__: disentanglement.scores(Toy(), f, seed=0, sizes=SMALL) for f in (exact, rotated, noise)}


def test_the_factors_themselves_score_at_or_near_the_maximum(measured):
    s = measured["exact"]
    assert s["beta_vae"] == 1.0 and s["factor_vae"] == 1.0
    assert s["mig"] > 0.95
    assert s["dci_disentanglement"] > 0.9 and s["dci_completeness"] > 0.9 and s["dci_informativeness_test"] == 1.0
    assert s["modularity"] > 0.95 and s["explicitness"] > 0.9
    # SAP's classifier is linear from one code: a factor of more than two values is only partly
    # predictable from even its own code (disentanglement_lib's definition), so its maximum is below 1
    assert s["sap"] > 0.3


def test_a_rotation_of_them_scores_lower(measured):
    exact_, rotated_ = measured["exact"], measured["rotated"]
    for name in ("mig", "dci_disentanglement", "modularity", "sap"):
        assert rotated_[name] < exact_[name] - 0.1, name


def test_noise_scores_near_chance(measured):
    s = measured["noise"]
    assert s["beta_vae"] < 0.45 and s["factor_vae"] < 0.6  # chance: 1/3 (three factors)
    assert s["mig"] < 0.05 and s["sap"] < 0.05
    assert s["dci_disentanglement"] < 0.2 and s["dci_informativeness_test"] < 0.35
    assert abs(s["explicitness"] - 0.5) < 0.05


def test_mig_by_hand():
    factor = np.array([[0], [0], [1], [1]])
    codes = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])  # code 1: the factor; code 2: partly
    # I(code 2; factor) = H(factor) - H(factor | code 2) = log 2 - 3/4 H(2/3, 1/3)
    partly = math.log(2) - 0.75 * -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert informational.mig(codes, factor, bins=2) == pytest.approx((math.log(2) - partly) / math.log(2))
    np.testing.assert_allclose(
        informational.mutual_information(informational.discretised(codes, 2), factor), [[math.log(2)], [partly]]
    )


def test_the_discretisation_is_equal_width_bins_over_each_codes_range():
    codes = np.array([[0.0, 10.0], [0.24, 0.0], [0.26, 5.0], [1.0, 4.9]])
    np.testing.assert_array_equal(informational.discretised(codes, 4), [[1, 4], [1, 1], [2, 3], [4, 2]])


def test_dci_by_hand():
    importance = np.array([[1.0, 0.0], [0.5, 0.5]])
    # code 1 informs factor 1 only (1 - H = 1), code 2 both equally (0); each half the importance
    assert informational.dci_disentanglement(importance) == pytest.approx(0.5)
    # factor 1 is spread 2/3, 1/3 over the codes; factor 2 lies in code 2 only; weights 3/4 and 1/4
    spread = 1 + (2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert informational.dci_completeness(importance) == pytest.approx(0.75 * spread + 0.25, abs=1e-9)


def test_modularity_by_hand():
    assert informational.modularity(np.array([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(0.5)
    assert informational.modularity(np.array([[2.0, 1.0, 0.0]])) == pytest.approx(1 - 1 / (4 * 2))
    assert informational.modularity(np.zeros((1, 3))) == 0.0  # a code informative of nothing
    diagonal = np.diag(np.full(5, 5.0))  # disentanglement_lib's own cases
    assert informational.modularity(diagonal) == pytest.approx(1.0)
    assert informational.modularity(np.vstack([diagonal, diagonal])) == pytest.approx(1.0)  # redundant codes
    assert informational.modularity(np.hstack([diagonal, diagonal])) == pytest.approx(1 - 1 / 9)  # one code, two
    assert informational.modularity(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])) == pytest.approx(2 / 3)


class Even(disentanglement.Factors):
    """Five factors of five values each; an observation is its factors' values."""

    factor_sizes = (5,) * 5
    factor_names = tuple("abcde")

    def observations(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, np.float64)


def test_codes_that_shuffle_the_factors_score_low_modularity():
    # each observation's codes are its factors in a random order: every code tells of every factor
    # alike (disentanglement_lib's "bad metric" case). Codes that tell of nothing do not score 0:
    # the plug-in information's bias grows with a factor's number of values (see noise above).
    rng = np.random.default_rng(0)
    shuffled = lambda x: np.stack([rng.permutation(row) for row in x])  # noqa: E731
    train = disentanglement.codes_and_factors(Even(), shuffled, 20_000, rng)
    information = informational.mutual_information(informational.discretised(train[0]), train[1])
    assert informational.modularity(information) < 0.2


def test_sap_and_the_factor_vae_vote_by_hand():
    scores = np.array([[0.9, 0.2], [0.5, 0.6], [0.1, 0.1]])
    assert informational.top_two_gap(scores) == pytest.approx(0.4)
    votes = np.array([[3, 0], [1, 4]])
    assert intervened.majority_accuracy(votes, np.argmax(votes, axis=0)) == pytest.approx(7 / 8)


def test_the_factor_vae_score_leaves_out_codes_that_do_not_vary():
    def with_a_dead_code(x):
        return np.concatenate([exact(x), np.zeros((len(x), 1))], axis=1)

    s = intervened.factor_vae_score(Toy(), with_a_dead_code, np.random.default_rng(0), 16, 300, 100, 500)
    assert s["active_codes"] == 3 and s["eval_accuracy"] == 1.0


def test_points_hold_their_factor_fixed_across_the_batch():
    seen = []

    def record(x):
        seen.append(x)
        return exact(x)

    features, fixed = intervened.beta_vae_points(Toy(), record, 5, 8, np.random.default_rng(1))
    first, second = np.concatenate(seen).reshape(2, 5, 8, 3)  # the first batches, then the second ones
    for p, k in enumerate(fixed):
        np.testing.assert_array_equal(first[p, :, k], second[p, :, k])
        assert features[p, [1, 2, 0][k]] == 0.0  # the code of the fixed factor never differs
