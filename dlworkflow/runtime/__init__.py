"""Torch-free runtime of exported models: `load_bundle` (ONNX Runtime + the training
preprocessing) and the model versions with their champion pointer. See bundle.py."""
