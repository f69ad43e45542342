"""Class-scale grading: every submission in its own sandboxed kernel, verdicts computed in the
grader's process, results merged by one writer into nbgrader's gradebook. See ``cli.py``."""
