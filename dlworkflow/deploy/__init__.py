"""Step 7, deployment (DESIGN.md `deploy/`): `export` (ONNX, parity, versions), `runtime` (the
torch-free bundle and the champion pointer, used by the gate, predict and serve) and `serve`
(`dlw serve`). Kept empty: importing one part must not import the others (serve and runtime
never import torch)."""
