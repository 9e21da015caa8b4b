"""Show the library's own code in a notebook, where reading it teaches.

Notebooks import the code they discuss rather than copying it, so what a learner reads is
exactly what runs. `show_source` displays it with syntax highlighting.
"""

from __future__ import annotations

import inspect

from IPython.display import Markdown, display


def show_source(obj: object) -> None:
    """Display the source code of a function, class or method from course_lib."""
    try:
        code = inspect.getsource(obj)
    except (TypeError, OSError):
        raise TypeError(f"obj must be a function, class or method defined in Python source, "
                        f"got {type(obj).__name__}") from None
    display(Markdown(f"```python\n{code}```"))
