"""Rule train: wired into the workflow, not built yet; fails loudly rather than faking a result."""

from jaflow.workflow import not_implemented

not_implemented("train")
