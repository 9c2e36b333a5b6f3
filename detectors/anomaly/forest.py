"""Isolation forest as plain arrays: exported from scikit-learn once, scored with numpy.

Why not keep the scikit-learn object: persisting it needs pickle (or skops' type audit), and its
`score_samples` costs milliseconds per call whatever the batch size, too slow for one request at a
time in a stream. The exported trees give the same scores (checked in tests) from a few padded
arrays that load with `np.load(allow_pickle=False)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_EULER_GAMMA = 0.5772156649015329


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected depth of an unsuccessful search in a binary search tree of `n` points."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER_GAMMA) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@dataclass(slots=True)
class ForestArrays:
    """All trees padded to the same node count; row t is tree t.

    `leaf_value` holds depth(leaf) + c(n_samples(leaf)) so scoring only walks to the leaf.
    Leaves point to themselves in `left`/`right`, which lets every sample walk `max_depth` steps.
    """

    feature: np.ndarray  # int32 [trees, nodes]; global feature index, 0 at leaves
    threshold: np.ndarray  # float64 [trees, nodes]
    left: np.ndarray  # int32 [trees, nodes]
    right: np.ndarray  # int32 [trees, nodes]
    leaf_value: np.ndarray  # float64 [trees, nodes]
    max_depth: int
    normaliser: float  # c(max_samples)

    def to_arrays(self, prefix: str = "forest.") -> dict[str, np.ndarray]:
        return {
            prefix + "feature": self.feature,
            prefix + "threshold": self.threshold,
            prefix + "left": self.left,
            prefix + "right": self.right,
            prefix + "leaf_value": self.leaf_value,
            prefix + "meta": np.array([self.max_depth, self.normaliser], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "forest.") -> ForestArrays:
        meta = arrays[prefix + "meta"]
        f = cls(
            feature=arrays[prefix + "feature"].astype(np.int32),
            threshold=arrays[prefix + "threshold"].astype(np.float64),
            left=arrays[prefix + "left"].astype(np.int32),
            right=arrays[prefix + "right"].astype(np.int32),
            leaf_value=arrays[prefix + "leaf_value"].astype(np.float64),
            max_depth=int(meta[0]),
            normaliser=float(meta[1]),
        )
        f.validate()
        return f

    def validate(self) -> None:
        """Reject arrays that would index out of bounds (a broken or hostile file)."""
        shape = self.feature.shape
        if len(shape) != 2 or any(a.shape != shape for a in (self.threshold, self.left, self.right, self.leaf_value)):
            raise ValueError("forest arrays have inconsistent shapes")
        nodes = shape[1]
        for a in (self.left, self.right):
            if a.size and (a.min() < 0 or a.max() >= nodes):
                raise ValueError("forest child index out of range")
        if self.feature.size and self.feature.min() < 0:
            raise ValueError("forest feature index negative")
        if not (0 < self.max_depth <= 64) or not self.normaliser > 0:
            raise ValueError("forest depth or normaliser out of range")

    @property
    def n_features_used(self) -> int:
        return int(self.feature.max()) + 1 if self.feature.size else 0

    def score(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score in (0, 1], higher = more anomalous (= -IsolationForest.score_samples)."""
        X = np.asarray(X, dtype=np.float32).astype(np.float64)  # trees were fitted on float32
        n_trees = self.feature.shape[0]
        rows = np.arange(n_trees)[None, :]
        node = np.zeros((X.shape[0], n_trees), dtype=np.int32)
        sample = np.arange(X.shape[0])[:, None]
        for _ in range(self.max_depth):
            f = self.feature[rows, node]
            go_left = X[sample, f] <= self.threshold[rows, node]
            node = np.where(go_left, self.left[rows, node], self.right[rows, node])
        depth = self.leaf_value[rows, node].sum(axis=1)
        return np.asarray(2.0 ** (-depth / (n_trees * self.normaliser)))


def export_isolation_forest(model: Any) -> ForestArrays:
    """Flatten a fitted sklearn IsolationForest (feature subsets mapped back to global indices)."""
    trees = [est.tree_ for est in model.estimators_]
    width = max(t.node_count for t in trees)
    n = len(trees)
    feature = np.zeros((n, width), dtype=np.int32)
    threshold = np.zeros((n, width), dtype=np.float64)
    left = np.tile(np.arange(width, dtype=np.int32), (n, 1))
    right = left.copy()
    leaf_value = np.zeros((n, width), dtype=np.float64)
    max_depth = 1
    for t, (tree, feats) in enumerate(zip(trees, model.estimators_features_)):
        depth = np.zeros(tree.node_count, dtype=np.int64)
        for node in range(tree.node_count):  # parents precede children in sklearn's layout
            lo, hi = tree.children_left[node], tree.children_right[node]
            if lo == -1:
                leaf_value[t, node] = depth[node] + average_path_length(np.array([tree.n_node_samples[node]]))[0]
                continue
            depth[lo] = depth[hi] = depth[node] + 1
            feature[t, node] = int(np.asarray(feats)[tree.feature[node]])
            threshold[t, node] = tree.threshold[node]
            left[t, node], right[t, node] = lo, hi
        max_depth = max(max_depth, int(depth.max()))
    normaliser = float(average_path_length(np.array([model.max_samples_]))[0])
    return ForestArrays(feature, threshold, left, right, leaf_value, max_depth, normaliser)
