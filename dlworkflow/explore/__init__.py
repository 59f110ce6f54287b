"""Step 3, explore: an EDA report (reports/eda.html) with a trust summary first.

    from dlworkflow.explore import explore
    result = explore(project)      # ExploreResult: rows() for the terminal, HTML in notebooks

Evidence comes from the manifest (class balance, image statistics, duplicates, text and
tabular columns), a stratified subsample's features (2-D map, label-issue candidates by
confident learning), and the split's membership (cross-split leakage).
"""

from dlworkflow.explore.result import ExploreResult
from dlworkflow.explore.step import explore
from dlworkflow.explore.trust import Warning

__all__ = ["ExploreResult", "Warning", "explore"]
