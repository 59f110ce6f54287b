"""The commented dlworkflow.yaml that `dlw init` writes: step 1 asks its questions first."""

from __future__ import annotations

TEMPLATE = """\
# dlworkflow project: {name}
# Every setting of the workflow lives here; `dlw config show` prints them all with defaults,
# `dlw config schema` prints what is allowed. Keep this file in git.
version: 1
name: {name}
task: {task}
seed: 42

# Step 1 - define the problem and what success is, BEFORE looking at the data.
# `dlw test` refuses to run until primary_metric and target are set.
# Set them here or with:  dlw define --metric accuracy --target 0.95
problem:
  # The objective in plain words: what decision or task does the model support?
  objective: null
  # What is judged: accuracy, balanced_accuracy, macro_f1 or auroc.
  # Prefer balanced_accuracy or macro_f1 when classes are imbalanced.
  primary_metric: null
  # The value of the primary metric that counts as success (0 to 1), agreed with the
  # people who decide on the result.
  target: null
  constraints:
    max_latency_ms: null      # largest acceptable CPU latency for one sample, in ms
    max_model_size_mb: null   # largest acceptable exported model size, in MB
  # Who is affected by the result and who decides on it.
  constituencies: []
  # What you take for granted (data is representative, labels are correct, ...).
  assumptions: []
  # none, pii (personal data) or phi (patient data).
  data_sensitivity: none

# Step 2 - get data:  dlw ingest builtin:mnist5k | dlw ingest FOLDER | dlw ingest FILE.csv
data:
  source: null
  path_column: path
  label_column: label
  group_column: null   # a CSV column that ties samples together (patient, session, ...)

# Step 4 - prepare: stratified, deterministic split; the test set is sealed.
split:
  train: 0.7
  val: 0.15
  test: 0.15

# Steps 5-6 - the network (`dlw models` lists them) and how it is trained.
model:
  name: {model}
train:
  epochs: 15
  batch_size: 64
  learning_rate: 0.002
"""


def render(*, name: str, task: str, model: str = "small_cnn") -> str:
    return TEMPLATE.format(name=name, task=task, model=model)
