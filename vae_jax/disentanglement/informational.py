"""The disentanglement scores read from (code, factor) pairs, as disentanglement_lib computes them
(Locatello et al. 2019); codes are (N, D) floats, factors (N, K) integer indices of each factor's
values:

- MIG (Chen et al. 2018): per factor, the gap between the two codes of most mutual information with
  it, over its entropy; codes discretised into 20 equal-width bins;
- DCI (Eastwood & Williams 2018): a gradient-boosted tree classifier per factor (scikit-learn's
  defaults); its impurity importances form the (D, K) matrix R; disentanglement is the mean over
  codes of 1 - H_K(R_i.), weighted by each code's share of the importance, completeness the same
  over factors with H_D, informativeness the classifiers' accuracy;
- modularity (Ridgeway & Mozer 2018): per code, 1 minus the squared mutual information with its
  factors other than the best, over (K - 1) times the best's; explicitness: the ROC-AUC of a logistic
  regression from the standardised codes to each factor (one against the rest, macro-averaged);
- SAP (Kumar et al. 2018): per (code, factor), the test accuracy of a linear SVM (C = 0.01, balanced
  classes) from that code alone; per factor, the gap between the best two codes; the mean over factors.

Mutual information and entropies are in nats (scikit-learn's mutual_info_score).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

BINS = 20


def discretised(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column of the codes in equal-width bins over its own range.

    Args:
        codes: (N, D).
        bins: bins per column.

    Returns:
        (N, D) ints 1..bins.
    """
    codes = np.asarray(codes, np.float64)
    return np.stack([np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in codes.T], axis=1)


def mutual_information(discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """The plug-in mutual information (nats) of each discrete code with each factor.

    Args:
        discrete: discrete codes (N, D) (`discretised`).
        factors: discrete factor values (N, K).

    Returns:
        (D, K).
    """
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in discrete.T])


def entropies(factors: np.ndarray) -> np.ndarray:
    """The plug-in entropy (nats) of each factor.

    Args:
        factors: discrete factor values (N, K).

    Returns:
        (K,).
    """
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(f, f) for f in factors.T])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> float:
    """The mutual information gap: the mean over factors of (I_(1) - I_(2)) / H(factor), I_(1) >= I_(2)
    the two largest informations of a code with it.

    Args:
        codes: (N, D).
        factors: discrete factor values (N, K).
        bins: the codes' bins (`discretised`).

    Returns:
        MIG, a float in [0, 1].
    """
    ranked = np.sort(mutual_information(discretised(codes, bins), factors), axis=0)[::-1]
    return float(np.mean((ranked[0] - ranked[1]) / entropies(factors)))


def _concentration(importance: np.ndarray, axis: int) -> float:
    """Of the importance matrix R (D codes, K factors): the mean over its rows (axis 1: each code over
    the factors) or columns (axis 0: each factor over the codes) of 1 - their entropy in base their
    length, weighted by their share of sum R (uniform where R is 0); 1e-11 added to R before the
    entropy, as disentanglement_lib adds it."""
    per = 1.0 - stats.entropy(importance + 1e-11, base=importance.shape[axis], axis=axis)
    weights = importance if importance.sum() else np.ones_like(importance)
    return float(np.sum(per * weights.sum(axis) / weights.sum()))


def dci_disentanglement(importance: np.ndarray) -> float:
    """DCI disentanglement: ``sum_i rho_i (1 - H_K(R_i.))``, ``rho_i = sum_j R_ij / sum R``.

    Args:
        importance: the importance matrix R (D codes, K factors).

    Returns:
        A float in [0, 1].
    """
    return _concentration(importance, axis=1)


def dci_completeness(importance: np.ndarray) -> float:
    """DCI completeness: ``sum_j rho_j (1 - H_D(R_.j))``, ``rho_j = sum_i R_ij / sum R``.

    Args:
        importance: the importance matrix R (D codes, K factors).

    Returns:
        A float in [0, 1].
    """
    return _concentration(importance, axis=0)


def dci(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], seed: int = 0) -> dict[str, float]:
    """DCI: a gradient-boosted tree classifier per factor fitted on `train`; its importances give
    disentanglement and completeness, its accuracies informativeness.

    Args:
        train: (codes (N, D), factors (N, K)) the model is fitted on.
        test: (codes (M, D), factors (M, K)) it is scored on.
        seed: the trees' random state.

    Returns:
        {'disentanglement', 'completeness', 'informativeness_train', 'informativeness_test'}.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    (x, y), (x_test, y_test) = train, test
    importance, accuracy, accuracy_test = np.zeros((x.shape[1], y.shape[1])), [], []
    for j in range(y.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(x, y[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        accuracy.append(np.mean(model.predict(x) == y[:, j]))
        accuracy_test.append(np.mean(model.predict(x_test) == y_test[:, j]))
    return {
        "disentanglement": dci_disentanglement(importance),
        "completeness": dci_completeness(importance),
        "informativeness_train": float(np.mean(accuracy)),
        "informativeness_test": float(np.mean(accuracy_test)),
    }


def modularity(information: np.ndarray) -> float:
    """Modularity: the mean over codes of 1 - (sum_j I_ij^2 - max_j I_ij^2) / (max_j I_ij^2 (K - 1)), 0 for
    a code informative of nothing.

    Args:
        information: the mutual information matrix (D codes, K factors).

    Returns:
        A float in [0, 1].
    """
    squared = np.square(information)
    best = squared.max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (squared.sum(1) - best) / (best * (squared.shape[1] - 1.0))
    return float(np.mean(np.where(best == 0.0, 0.0, score)))


def explicitness(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """Explicitness: the mean over factors of the macro ROC-AUC of a logistic regression from the codes,
    standardised by the training codes' mean and deviation, to the factor's value.

    Args:
        train: (codes (N, D), factors (N, K)) the model is fitted on.
        test: (codes (M, D), factors (M, K)) it is scored on.

    Returns:
        (train, test) explicitness.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import label_binarize

    (x, y), (x_test, y_test) = train, test
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 0, std, 1.0)
    x, x_test = (x - mean) / std, (x_test - mean) / std
    scores = []
    for j in range(y.shape[1]):
        model = LogisticRegression(max_iter=1000).fit(x, y[:, j])
        pair = []
        for xs, ys in ((x, y[:, j]), (x_test, y_test[:, j])):
            onehot = label_binarize(ys, classes=model.classes_)
            if len(model.classes_) == 2:
                onehot = np.concatenate([1 - onehot, onehot], axis=1)
            pair.append(roc_auc_score(onehot, model.predict_proba(xs), average="macro"))
        scores.append(pair)
    return tuple(float(v) for v in np.mean(scores, axis=0))


def sap_matrix(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The SAP score matrix: the test accuracy of a linear SVM (C = 0.01, balanced classes) predicting
    factor j from code i alone, fitted on `train` (discrete factors).

    Args:
        train: (codes (N, D), factors (N, K)) the model is fitted on.
        test: (codes (M, D), factors (M, K)) it is scored on.

    Returns:
        (D, K).
    """
    from sklearn.svm import LinearSVC

    (x, y), (x_test, y_test) = train, test
    scores = np.zeros((x.shape[1], y.shape[1]))
    for i in range(x.shape[1]):
        for j in range(y.shape[1]):
            model = LinearSVC(C=0.01, class_weight="balanced").fit(x[:, i : i + 1], y[:, j])
            scores[i, j] = np.mean(model.predict(x_test[:, i : i + 1]) == y_test[:, j])
    return scores


def top_two_gap(scores: np.ndarray) -> float:
    """The mean over columns (factors) of the gap between a column's two largest entries.

    Args:
        scores: (D, K).

    Returns:
        A float.
    """
    ranked = np.sort(scores, axis=0)
    return float(np.mean(ranked[-1] - ranked[-2]))


def sap(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> float:
    """The SAP score (Kumar et al. 2018).

    Args:
        train: (codes (N, D), factors (N, K)) the model is fitted on.
        test: (codes (M, D), factors (M, K)) it is scored on.

    Returns:
        A float in [0, 1].
    """
    return top_two_gap(sap_matrix(train, test))
