"""nbgrader configuration for this repository (the repository root is the course directory).

Instructors: `nbgrader generate_assignment ch02_rnn --force` writes exercises/ch02_rnn/ from
solutions/ch02_rnn/; students' work goes in submitted/<student>/<id>/; `nbgrader autograde <id>`
grades it. See README.md, "Instructor's path".
"""

c = get_config()  # noqa: F821  (nbgrader injects get_config)

c.CourseDirectory.course_id = "rnn-math-to-code"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# Each exercise notebook runs in well under 60 s; a single cell past 60 s is an infinite loop.
c.ExecutePreprocessor.timeout = 60
c.ExecutePreprocessor.interrupt_on_timeout = True
# nbgrader fails a whole notebook ("There was an error processing assignment") when a cell's
# last outputs arrive more than iopub_timeout seconds after its reply (nbclient's default is 4 s,
# and nbgrader turns the warning into an error). On a loaded machine (a class graded on 2 cores)
# a correct notebook can hit that: wait as long as a cell may run.
c.Execute.iopub_timeout = 60

# A test cell a student deleted is put back from the gradebook before grading.
c.OverwriteCells.add_missing_cells = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
