"""examples/quickstart.ipynb runs top to bottom (nbclient, a real kernel on this interpreter)
and ends with a PASS verdict; the committed notebook carries no outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"
KERNEL = "dlworkflow-quickstart"


@pytest.fixture
def kernel_on_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that runs ipykernel on sys.executable (this venv), first on JUPYTER_PATH,
    so no kernelspec elsewhere on the machine (user, system) can pick another Python."""
    folder = tmp_path / "jupyter" / "kernels" / KERNEL
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "dlworkflow tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    temp = tmp_path / "tmp"  # the notebook's tempfile.mkdtemp() project lands here
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    return KERNEL


def test_quickstart_notebook_is_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for step in range(1, 10):
        assert f"Step {step}" in text


def test_quickstart_notebook_runs_the_workflow(tmp_path: Path, kernel_on_this_interpreter: str):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = NotebookClient(
        nb,
        kernel_name=kernel_on_this_interpreter,
        timeout=300,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "verdict: PASS" in printed, printed
    assert "monitor: ALERT" in printed, printed  # step 9: the inverted digits drifted
    html = [
        o.data["text/html"]
        for o in outputs
        if o.output_type == "execute_result" and "text/html" in o.data
    ]
    assert len(html) >= 9  # every step's result rendered as HTML
    assert any("data:image/png;base64," in h for h in html)  # figures inline
