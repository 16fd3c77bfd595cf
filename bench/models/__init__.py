"""Networks the tasks train (not objects of study themselves; registered as choices)."""
