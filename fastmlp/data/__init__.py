"""Package data for `fastmlp demo`, made by scripts/train_demo_model.py.

digits_mlp.npz is the built-in digit classifier; digits_holdout.npz holds the
held-out digits it is scored on. Read them with importlib.resources.
"""
