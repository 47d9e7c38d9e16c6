"""jobdeck recorder: the only writer of job state, fed by the ``jobdeck:events`` stream."""
