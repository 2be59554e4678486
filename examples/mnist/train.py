"""Train the MNIST-like model the Azure tutorial deploys, with no downloads.

scikit-learn's bundled 8x8 digits are upscaled to MNIST's 28x28 (each pixel
becomes 3x3, plus a 2-pixel border) and scaled to 0..1, giving 784 features and
10 classes. A LogisticRegression is trained on them and saved with joblib as
`sklearn_mnist_model.pkl`; five held-out rows go to `sample-request.json` in the
`{"data": [[...784 floats...], ...]}` shape score.py expects. Deterministic
(fixed split and seed); takes a few seconds.

    python examples/mnist/train.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

MODEL_FILE = "sklearn_mnist_model.pkl"
SAMPLE_FILE = "sample-request.json"
SEED = 42


def mnist_like() -> tuple[np.ndarray, np.ndarray]:
    """784-feature images (28x28, values 0..1) and their labels, from the 8x8 digits."""
    digits = load_digits()
    images = digits.images / 16.0  # 0..16 -> 0..1
    big = np.kron(images, np.ones((1, 3, 3)))  # 8x8 -> 24x24
    padded = np.pad(big, ((0, 0), (2, 2), (2, 2)))  # -> 28x28, like MNIST's border
    return padded.reshape(len(images), 28 * 28), digits.target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    X, y = mnist_like()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=SEED, stratify=y
    )
    # tol 1e-3: about 30 lbfgs iterations (seconds) instead of ~170, and no worse accuracy.
    model = LogisticRegression(C=1.0, tol=1e-3, max_iter=200, random_state=SEED)
    model.fit(X_train, y_train)
    accuracy = float((model.predict(X_test) == y_test).mean())

    joblib.dump(model, args.out / MODEL_FILE)
    samples = X_test[:5]
    # Rounded so the request stays readable; the values are exact multiples of 1/16 anyway.
    request = {"data": [[round(float(v), 4) for v in row] for row in samples]}
    (args.out / SAMPLE_FILE).write_text(json.dumps(request) + "\n")
    expected = model.predict(samples).tolist()
    print(
        f"accuracy {accuracy:.3f} on {len(y_test)} held-out digits; wrote {args.out / MODEL_FILE} "
        f"and {args.out / SAMPLE_FILE} (expected predictions {expected}, labels "
        f"{y_test[:5].tolist()})"
    )


if __name__ == "__main__":
    main()
