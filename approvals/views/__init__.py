"""Server-rendered pages. Thin: parse input, call a service or selector, render.

Domain errors are shown on the form with the status they mean (400, 403, 409);
a request the user may not see answers 404, so its existence is not revealed.
"""
